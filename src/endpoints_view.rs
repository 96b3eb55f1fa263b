//! `medallion endpoint status`: what an endpoint serves according to the lake's release records,
//! and what its local servers answer.

use medallion_lake::{DatasetName, StoreLocation};
use medallion_release::deployments;
use medallion_steps::deploy::LocalArgs;
use medallion_steps::local_endpoint::{self, EndpointDir};

pub async fn status(lake_url: &str, endpoint: &str, local: &LocalArgs) -> anyhow::Result<()> {
    let lake = StoreLocation::open("lake", lake_url)?;
    let name = DatasetName::new(endpoint)?;
    match deployments::current(&lake, &name).await? {
        Some(s) => println!(
            "{endpoint}: serves {} v{} from {} ({}, plan {}, {} by {} at {}){}",
            s.serving.model,
            s.serving.version,
            s.serving.slot,
            s.target.as_str(),
            s.serving.plan_id,
            match s.kind {
                deployments::StateKind::Release => "released",
                deployments::StateKind::Rollback => "rolled back",
            },
            s.by,
            s.at,
            s.url.map(|u| format!(" at {u}")).unwrap_or_default()
        ),
        None => println!("{endpoint}: no release recorded in {lake_url}"),
    }
    for h in deployments::history(&lake, &name).await? {
        println!(
            "  #{} {:<9} {} v{} on {} (plan {}) at {}",
            h.seq,
            match h.kind {
                deployments::StateKind::Release => "release",
                deployments::StateKind::Rollback => "rollback",
            },
            h.serving.model,
            h.serving.version,
            h.serving.slot,
            h.serving.plan_id,
            h.at
        );
    }
    let ep = EndpointDir::new(&local.state_dir, endpoint);
    let client = local_endpoint::client()?;
    let running = ep.running(&client).await?;
    for (role, s) in [("active", running.active), ("standby", running.standby)] {
        if let Some(s) = s {
            let p = ep.slot(s.slot)?;
            println!(
                "  local {role}: {} v{} {} ({})",
                s.slot,
                s.version,
                if s.ready { "ready" } else { "not answering" },
                p.map(|p| format!("pid {}, {}", p.pid, p.url()))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}
