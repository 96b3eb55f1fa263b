//! The gate before `terraform apply`: an infrastructure plan may be applied only when its
//! approval (or a person's review) is bound to the plan's hash and the saved plan file at hand is
//! byte for byte the one that was planned and approved. The apply itself runs in the upstream
//! terraform image; this step proves it may.

use medallion_lake::records;
use medallion_lake::{DatasetName, StoreLocation};
use medallion_release::plan::{self, PlanKind};
use medallion_release::plan_approval;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::StepOutputs;
use crate::deploy::{DeployArgs, DeployError};

/// What the gate found; recorded as `releases/<target>/<plan-id>/apply-authorized.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyAuthorized {
    pub plan_id: String,
    pub plan_hash: String,
    pub planfile_sha256: String,
    pub authorized_by: String,
    pub at: String,
}

pub async fn authorize(args: &DeployArgs) -> Result<ApplyAuthorized, DeployError> {
    let lake = StoreLocation::open("lake", &args.lake)?;
    let target = DatasetName::new(&args.endpoint)?;
    let plan = plan::read(&lake, &target, &args.plan_id).await?;
    let refused = |message: String| DeployError::Refused {
        what: format!("plan {}", plan.id),
        message,
    };
    if plan.kind != PlanKind::Infrastructure {
        return Err(refused(
            "is a model release; apply it with medallion-deploy without --terraform-planfile"
                .into(),
        ));
    }
    let auth = plan_approval::authorization(&lake, &plan).await?;
    let Some(expected) = &plan.terraform_planfile_sha256 else {
        return Err(refused(
            "was made without --terraform-planfile, so its approval does not cover a plan file; plan again with it".into(),
        ));
    };
    let Some(path) = &args.terraform_planfile else {
        return Err(refused("needs --terraform-planfile <saved plan>".into()));
    };
    let bytes = std::fs::read(path).map_err(|e| {
        refused(format!(
            "the saved plan {} cannot be read ({e})",
            path.display()
        ))
    })?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if &actual != expected {
        return Err(refused(format!(
            "the saved plan {} (SHA-256 {actual}) is not the one approved ({expected}); apply only the approved file, or plan and approve again",
            path.display()
        )));
    }
    let record = ApplyAuthorized {
        plan_id: plan.id.clone(),
        plan_hash: plan.hash.clone(),
        planfile_sha256: actual,
        authorized_by: auth.by(),
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let rel = format!(
        "{}/apply-authorized.json",
        medallion_lake::layout::release_dir(&target, &plan.id)
    );
    records::put_json(&lake, &rel, &record).await?;
    tracing::info!(plan = %plan.id, by = %record.authorized_by, "terraform apply authorized");
    Ok(record)
}

/// Outputs: status (authorized), plan-id, planfile-sha256, authorized-by.
pub fn outputs(a: &ApplyAuthorized) -> StepOutputs {
    let mut out = StepOutputs::new();
    out.set("status", "authorized")
        .set("plan-id", a.plan_id.clone())
        .set("planfile-sha256", a.planfile_sha256.clone())
        .set("authorized-by", a.authorized_by.clone());
    out
}
