//! medallion-deploy's kubernetes target against a recorded-behaviour Kubernetes API server
//! (tests/py/kube_replay.py: a mock, since no cluster can run here) whose service proxy forwards
//! to real medallion-serve processes standing in for the slots' pods.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::deploy::house_price_versions;
use crate::support::{ModelServer, StepRun, python, repo, step};

struct FakeApi {
    child: Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    url: String,
}

impl FakeApi {
    fn start(
        state: &std::path::Path,
        token: &str,
        rollout: &str,
        slots: &[(&str, u16)],
        extra: &[&str],
    ) -> FakeApi {
        let mut cmd = Command::new(python());
        cmd.arg(repo().join("tests/py/kube_replay.py"))
            .args(["--token", token, "--rollout", rollout, "--state"])
            .arg(state)
            .args(extra);
        for (slot, port) in slots {
            cmd.args(["--slot", &format!("{slot}=http://127.0.0.1:{port}")]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let port = lines.next().unwrap().unwrap();
        FakeApi {
            child,
            lines,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The requests it received, after stopping it.
    fn requests(mut self) -> Vec<Value> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.lines
            .by_ref()
            .map_while(Result::ok)
            .map(|l| serde_json::from_str(&l).unwrap())
            .collect()
    }
}

fn production(lake: &std::path::Path) -> u64 {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(lake.join("models/house-price/aliases/production.json")).unwrap(),
    )
    .unwrap();
    v["version"].as_u64().unwrap()
}

#[test]
fn kubernetes_target_applies_rolls_out_switches_and_rolls_back_against_a_mock_api_server() {
    let dir = tempfile::tempdir().unwrap();
    let lake_path = dir.path().join("lake");
    let lake = lake_path.to_str().unwrap();
    house_price_versions(dir.path(), lake, 2);
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "no_production: approve\ndestructive: reject\nallowed_namespaces: [models]\n",
    )
    .unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "sa-token-123\n").unwrap();
    let release = |version: &str, api: &FakeApi, timeout: &str| -> (StepRun, String) {
        let p = step(
            "medallion-plan",
            lake,
            &[
                "--target",
                "house-price",
                "--model",
                "house-price",
                "--model-version",
                version,
                "--deploy-target",
                "kubernetes",
                "--namespace",
                "models",
                "--replicas",
                "2",
                "--image",
                "registry.example/medallion-serve:0.1.0",
            ],
            &[],
        );
        assert_eq!(p.code, 0, "{}", p.stderr);
        let id = p.output("plan-id").to_string();
        let a = step(
            "medallion-approve",
            lake,
            &[
                "--target",
                "house-price",
                "--plan-id",
                &id,
                "--policy",
                policy.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(a.code, 0, "{}", a.stderr);
        let d = step(
            "medallion-deploy",
            lake,
            &[
                "--endpoint",
                "house-price",
                "--plan-id",
                &id,
                "--kube-api",
                &api.url,
                "--kube-token-file",
                token.to_str().unwrap(),
                "--rollout-timeout",
                timeout,
            ],
            &[],
        );
        (d, id)
    };
    // One cluster state across the runs (what the API server stores).
    let cluster = dir.path().join("cluster.json");
    let v1 = ModelServer::start(lake, "house-price", &["--version", "1"]);
    let v2 = ModelServer::start(lake, "house-price", &["--version", "2"]);

    // v1, the first release: blue rolls out (after a few polls), the Service is created, the
    // smoke test goes through the API server's service proxy to the blue pod.
    // The rollout completes after two polls, then the old pod stays for two more (pending
    // termination): the Service may switch only once it is gone, as kubectl rollout status
    // waits (kubectl v0.32.4 pkg/polymorphichelpers/rollout_status.go lines 83-85).
    let api = FakeApi::start(
        &cluster,
        "sa-token-123",
        "2",
        &[("blue", v1.port), ("green", v2.port)],
        &["--terminating", "2"],
    );
    let (d1, _) = release("1", &api, "20");
    let requests = api.requests();
    assert_eq!(d1.code, 0, "{}", d1.stderr);
    assert_eq!(d1.output("status"), "deployed");
    assert_eq!(d1.output("slot"), "blue");
    assert_eq!(
        d1.output("url"),
        "http://house-price.models.svc.cluster.local"
    );
    assert_eq!(production(&lake_path), 1);
    let seen: Vec<String> = requests
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap()
            )
        })
        .collect();
    let first_service = seen
        .iter()
        .position(|s| s == "PATCH /api/v1/namespaces/models/services/house-price")
        .expect("the Service is applied");
    let last_rollout_poll = seen
        .iter()
        .rposition(|s| s == "GET /apis/apps/v1/namespaces/models/deployments/house-price-blue")
        .unwrap();
    assert_eq!(
        seen[0], "PATCH /apis/apps/v1/namespaces/models/deployments/house-price-blue",
        "{seen:#?}"
    );
    assert!(
        last_rollout_poll < first_service,
        "the Service switches only after the rollout: {seen:#?}"
    );
    assert!(
        seen.iter()
            .filter(|s| s.ends_with("deployments/house-price-blue") && s.starts_with("GET"))
            .count()
            >= 5,
        "{seen:#?}"
    );
    assert_eq!(
        seen.last().unwrap(),
        "POST /api/v1/namespaces/models/services/house-price:http/proxy/v2/models/house-price/infer",
        "{seen:#?}"
    );
    for r in &requests {
        assert_eq!(r["auth"], true, "{r}");
        if r["method"] == "PATCH" {
            assert_eq!(r["content_type"], "application/apply-patch+yaml");
            assert_eq!(r["query"]["fieldManager"][0], "medallion");
            assert_eq!(r["query"]["force"][0], "true");
        }
    }
    let service = requests
        .iter()
        .find(|r| r["method"] == "PATCH" && r["path"].as_str().unwrap().contains("/services/"))
        .unwrap();
    assert_eq!(
        service["body"]["spec"]["selector"]["medallion.dev/slot"],
        "blue"
    );

    // v2 whose rollout never finishes: no Service change, production stays v1, exit 1 (retry).
    let stuck = FakeApi::start(
        &cluster,
        "sa-token-123",
        "never",
        &[("blue", v1.port), ("green", v2.port)],
        &[],
    );
    let (d2, id2) = release("2", &stuck, "2");
    let requests = stuck.requests();
    assert_eq!(d2.code, 1, "{}", d2.stderr);
    assert!(
        d2.error_line().contains("did not roll out in 2s"),
        "{}",
        d2.stderr
    );
    assert!(
        !requests
            .iter()
            .any(|r| r["path"].as_str().unwrap().contains("/services/")),
        "the Service was touched"
    );
    assert_eq!(production(&lake_path), 1);
    let failures = std::fs::read_dir(lake_path.join(format!("releases/house-price/{id2}")))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("failed-"))
        .count();
    assert_eq!(failures, 1);

    // v2 rolled out but the green pods answer like v1 (a bad image): the smoke test through
    // the Service fails, the Service selects blue again, exit 3; production stays v1.
    let wrong = FakeApi::start(
        &cluster,
        "sa-token-123",
        "1",
        &[("blue", v1.port), ("green", v1.port)],
        &[],
    );
    let (d3, _) = release("2", &wrong, "20");
    let requests = wrong.requests();
    assert_eq!(d3.code, 3, "{}", d3.stderr);
    assert!(
        d3.error_line()
            .contains("the Service selects the old slot again"),
        "{}",
        d3.stderr
    );
    let selectors: Vec<&str> = requests
        .iter()
        .filter(|r| r["method"] == "PATCH" && r["path"].as_str().unwrap().contains("/services/"))
        .map(|r| {
            r["body"]["spec"]["selector"]["medallion.dev/slot"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(selectors, ["green", "blue"], "switched, then switched back");
    assert_eq!(production(&lake_path), 1);

    // A token the API server refuses: exit 2 with its message, nothing applied.
    let strict = FakeApi::start(&cluster, "another-token", "1", &[], &[]);
    let (d4, _) = release("2", &strict, "5");
    let _ = strict.requests();
    assert_eq!(d4.code, 2, "{}", d4.stderr);
    assert!(d4.error_line().contains("401"), "{}", d4.stderr);
    // v2 for real (green answers as v2): deployed; then `medallion rollback` applies the
    // previous plan's Service again (blue), after checking blue's Deployment still runs.
    let good = FakeApi::start(
        &cluster,
        "sa-token-123",
        "1",
        &[("blue", v1.port), ("green", v2.port)],
        &[],
    );
    let (d5, _) = release("2", &good, "20");
    assert_eq!(d5.code, 0, "{}", d5.stderr);
    assert_eq!(d5.output("slot"), "green");
    assert_eq!(production(&lake_path), 2);
    let back = crate::support::medallion(
        &[
            "rollback",
            "house-price",
            "--lake",
            lake,
            "--kube-api",
            &good.url,
            "--kube-token-file",
            token.to_str().unwrap(),
        ],
        &[],
    );
    let requests = good.requests();
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert_eq!(production(&lake_path), 1);
    let last_service = requests
        .iter()
        .rev()
        .find(|r| r["method"] == "PATCH" && r["path"].as_str().unwrap().contains("/services/"))
        .unwrap();
    assert_eq!(
        last_service["body"]["spec"]["selector"]["medallion.dev/slot"],
        "blue"
    );
    let current: Value = serde_json::from_str(
        &std::fs::read_to_string(lake_path.join("releases/house-price/current.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(current["kind"], "rollback", "{current}");

    drop((v1, v2));
}

/// medallion-plan with a cluster configured: every planned object goes through a server-side
/// apply dry run (`dryRun=All`) and is compared with the live object, against the mock API
/// server (it fills in defaults and runs an admission webhook like a real one would).
#[test]
fn plans_diff_against_the_cluster_with_a_server_side_dry_run_on_a_mock_api_server() {
    let dir = tempfile::tempdir().unwrap();
    let lake_path = dir.path().join("lake");
    let lake = lake_path.to_str().unwrap();
    house_price_versions(dir.path(), lake, 2);
    let token = dir.path().join("token");
    std::fs::write(&token, "sa-token-123\n").unwrap();
    let token = token.to_str().unwrap();
    let cluster = dir.path().join("cluster.json");
    let v1 = ModelServer::start(lake, "house-price", &["--version", "1"]);
    let api = FakeApi::start(
        &cluster,
        "sa-token-123",
        "1",
        &[("blue", v1.port)],
        &["--allowed-registry", "registry.example/"],
    );
    let plan = |version: &str, image: &str, extra: &[&str]| -> StepRun {
        let mut args = vec![
            "--target",
            "house-price",
            "--model",
            "house-price",
            "--model-version",
            version,
            "--deploy-target",
            "kubernetes",
            "--namespace",
            "models",
            "--max-replicas",
            "3",
            "--image",
            image,
        ];
        args.extend_from_slice(extra);
        step("medallion-plan", lake, &args, &[])
    };
    let with_api = ["--kube-api", api.url.as_str(), "--kube-token-file", token];
    let image = "registry.example/medallion-serve:0.1.0";
    let plan_json = |id: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(
                lake_path.join(format!("releases/house-price/{id}/plan.json")),
            )
            .unwrap(),
        )
        .unwrap()
    };

    // Nothing in the cluster yet: every object is created; the dry run stored nothing.
    let p1 = plan("1", image, &with_api);
    assert_eq!(p1.code, 0, "{}", p1.stderr);
    let id1 = p1.output("plan-id").to_string();
    let diff = &plan_json(&id1)["release"]["live_diff"];
    assert_eq!(diff["server"], api.url.as_str());
    let created: Vec<(&str, &str)> = diff["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["address"].as_str().unwrap(),
                o["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        created,
        [
            ("Deployment/models/house-price-blue", "create"),
            ("HorizontalPodAutoscaler/models/house-price-blue", "create"),
            ("Service/models/house-price", "create")
        ]
    );
    assert!(
        p1.output("summary").contains(
            "Against the cluster (server-side dry run): Deployment/models/house-price-blue create;"
        ),
        "{}",
        p1.output("summary")
    );
    // Planning again (same release, same history position) finds the same plan.
    assert_eq!(plan("1", image, &with_api).output("plan-id"), id1);

    // v1 released for real; then v2's plan shows the green objects created and, of the live
    // Service, only the selector changing (the defaults the server filled in are not changes).
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "no_production: approve\n").unwrap();
    let a1 = step(
        "medallion-approve",
        lake,
        &[
            "--target",
            "house-price",
            "--plan-id",
            &id1,
            "--policy",
            policy.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(a1.code, 0, "{}", a1.stderr);
    let d1 = step(
        "medallion-deploy",
        lake,
        &[
            &["--endpoint", "house-price", "--plan-id", &id1][..],
            &with_api[..],
        ]
        .concat(),
        &[],
    );
    assert_eq!(d1.code, 0, "{}", d1.stderr);
    let p2 = plan("2", image, &with_api);
    assert_eq!(p2.code, 0, "{}", p2.stderr);
    let id2 = p2.output("plan-id").to_string();
    let diff = plan_json(&id2)["release"]["live_diff"].clone();
    let objects = diff["objects"].as_array().unwrap();
    assert_eq!(objects[0]["address"], "Deployment/models/house-price-green");
    assert_eq!(objects[0]["action"], "create");
    assert_eq!(objects[2]["address"], "Service/models/house-price");
    assert_eq!(objects[2]["action"], "update");
    assert_eq!(
        objects[2]["fields"],
        serde_json::json!([{"path": "spec.selector[\"medallion.dev/slot\"]", "live": "blue", "planned": "green"}]),
        "{diff}"
    );
    let summary =
        std::fs::read_to_string(lake_path.join(format!("releases/house-price/{id2}/summary.md")))
            .unwrap();
    assert!(
        summary.contains("## Against the cluster (server-side dry run")
            && summary.contains("| `spec.selector[\"medallion.dev/slot\"]` | `blue` | `green` |"),
        "{summary}"
    );

    // An image the cluster's admission webhook refuses fails the plan (exit 2, its message);
    // no plan is stored. Without a cluster, --server-dry-run always is refused; never skips it.
    let before = std::fs::read_dir(lake_path.join("releases/house-price"))
        .unwrap()
        .count();
    let refused = plan("2", "docker.io/someone/serve:latest", &with_api);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.error_line().contains("server-side dry run against")
            && refused
                .error_line()
                .contains("denied the request: image docker.io/someone/serve:latest"),
        "{}",
        refused.error_line()
    );
    assert_eq!(
        std::fs::read_dir(lake_path.join("releases/house-price"))
            .unwrap()
            .count(),
        before
    );
    // Outside a pod, as every Kubernetes tool: the kubeconfig's current context names the
    // cluster, and its user's exec plugin (as AKS's kubelogin) gives the token.
    let kubeconfig = dir.path().join("kubeconfig");
    let plugin = dir.path().join("token-plugin");
    std::fs::write(
        &plugin,
        "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"sa-token-123\"}}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: mock\ncontexts:\n- name: mock\n  context: {{cluster: mock, user: me}}\nclusters:\n- name: mock\n  cluster: {{server: '{}'}}\nusers:\n- name: me\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n",
            api.url,
            plugin.display()
        ),
    )
    .unwrap();
    let via_kubeconfig = plan(
        "2",
        image,
        &[
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--server-dry-run",
            "always",
        ],
    );
    assert_eq!(via_kubeconfig.code, 0, "{}", via_kubeconfig.stderr);
    assert_eq!(
        plan_json(via_kubeconfig.output("plan-id"))["release"]["live_diff"]["server"],
        api.url.as_str()
    );
    let requests = api.requests();
    for r in &requests {
        assert_eq!(r["auth"], true, "{r}");
    }
    let dry_runs = requests
        .iter()
        .filter(|r| r["method"] == "PATCH" && r["query"]["dryRun"][0] == "All")
        .count();
    assert_eq!(
        dry_runs,
        3 + 3 + 3 + 1 + 3,
        "three plans of three objects, one refused, one through the kubeconfig"
    );
    let missing = dir.path().join("no-such-kubeconfig");
    let no_cluster = step(
        "medallion-plan",
        lake,
        &[
            "--target",
            "house-price",
            "--model",
            "house-price",
            "--model-version",
            "2",
            "--deploy-target",
            "kubernetes",
            "--namespace",
            "models",
            "--image",
            image,
            "--server-dry-run",
            "always",
        ],
        &[("KUBECONFIG", missing.to_str().unwrap())],
    );
    assert_eq!(no_cluster.code, 2, "{}", no_cluster.stderr);
    assert!(
        no_cluster.error_line().contains(
            "run in a pod, or give a kubeconfig (--kubeconfig, KUBECONFIG or ~/.kube/config)"
        ),
        "{}",
        no_cluster.error_line()
    );
    let never = plan(
        "2",
        image,
        &["--server-dry-run", "never", "--replicas", "2"],
    );
    assert_eq!(never.code, 0, "{}", never.stderr);
    assert_ne!(never.output("plan-id"), id2);
    assert!(plan_json(never.output("plan-id"))["release"]["live_diff"].is_null());
    drop(v1);
}

/// What Argo's and Argo Events' install manifests put on a cluster, as far as doctor looks:
/// the CRDs and the controllers' Deployments.
fn argo_installed(executor_plugins: bool) -> String {
    let mut docs = Vec::new();
    for crd in [
        "workflows",
        "workflowtemplates",
        "clusterworkflowtemplates",
        "cronworkflows",
        "workflowtaskresults",
        "workflowtasksets",
        "eventbus",
        "eventsources",
        "sensors",
    ] {
        docs.push(format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: {crd}.argoproj.io}}\n"
        ));
    }
    let env = if executor_plugins {
        "\n          env: [{name: ARGO_EXECUTOR_PLUGINS, value: \"true\"}]"
    } else {
        ""
    };
    docs.push(format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: workflow-controller, namespace: argo}}\nspec:\n  template:\n    spec:\n      containers:\n        - name: workflow-controller\n          image: quay.io/argoproj/workflow-controller:v4.1.2{env}\n"
    ));
    docs.push("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: controller-manager, namespace: argo-events}\nspec:\n  template:\n    spec:\n      containers:\n        - name: controller-manager\n          image: quay.io/argoproj/argo-events:v1.9.11\n".to_string());
    docs.join("---\n")
}

/// `medallion doctor` against a mock API server (no cluster can run here; the mock answers
/// SubjectAccessReviews by evaluating the stored RBAC objects as Kubernetes' RBAC authorizer
/// documents it): a cluster with the install bundle applied passes every check; one missing
/// pieces fails the checks that name them, each with what to apply, exit 3.
#[test]
fn doctor_checks_an_install_against_a_mock_api_server() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "admin-token\n").unwrap();
    let out = Command::new("kubectl")
        .args(["kustomize", repo().join("install").to_str().unwrap()])
        .output()
        .expect("kubectl (installed on this machine) runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The settings a user fills in: real client ids instead of the placeholder.
    let bundle = String::from_utf8_lossy(&out.stdout).replace(
        "00000000-0000-0000-0000-000000000000",
        "5f1c2d0e-7a42-4c1e-9a51-2f3b8e6d4c10",
    );
    let doctor = |cluster: &str, name: &str| -> (StepRun, Value) {
        let preload = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&preload, cluster).unwrap();
        let api = FakeApi::start(
            &dir.path().join(format!("{name}.json")),
            "admin-token",
            "1",
            &[],
            &["--preload", preload.to_str().unwrap()],
        );
        let run = crate::support::medallion(
            &[
                "doctor",
                "--kube-api",
                &api.url,
                "--kube-token-file",
                token.to_str().unwrap(),
                "--format",
                "json",
            ],
            &[],
        );
        let _ = api.requests();
        let v = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
        (run, v)
    };
    // The platform pipeline mounts the team's Terraform configuration, which they create.
    let terraform = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: medallion-terraform, namespace: argo}\ndata: {main.tf: ''}\n";
    let ready = format!("{bundle}\n---\n{}\n---\n{terraform}", argo_installed(true));
    let (run, v) = doctor(&ready, "ready");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let checks = v["checks"].as_array().unwrap();
    assert!(checks.len() >= 15, "{v:#}");
    assert!(checks.iter().all(|c| c["ok"] == true), "{v:#}");

    // What an incomplete install looks like: no artifact repository, no Role for the Sensor,
    // executor plugins off, the workflows' identity left at the placeholder.
    let broken: String = String::from_utf8_lossy(&out.stdout)
        .split("\n---\n")
        .filter(|d| {
            let repository = d.contains("name: artifact-repositories");
            let sensor_binding =
                d.contains("kind: RoleBinding") && d.contains("name: medallion-sensor");
            !(repository || sensor_binding)
        })
        .collect::<Vec<_>>()
        .join("\n---\n");
    let (run, v) = doctor(
        &format!("{broken}\n---\n{}", argo_installed(false)),
        "broken",
    );
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let failed = |name: &str| -> Value {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no check {name} in {v:#}"))
            .clone()
    };
    // A check that failed, and the text its `field` (detail or fix) must hold.
    let failed_with = |name: &str, field: &str, needle: &str| {
        let c = failed(name);
        assert_eq!(c["ok"], false, "{c}");
        assert!(c[field].as_str().unwrap().contains(needle), "{c}");
    };
    failed_with("Artifact repository", "fix", "kubectl apply -k install/");
    failed_with(
        "Executor plugins enabled",
        "fix",
        "ARGO_EXECUTOR_PLUGINS=true",
    );
    failed_with(
        "argo-events/medallion-sensor may: the Sensor submits Workflows",
        "detail",
        "denied: create workflows in argo",
    );
    failed_with(
        "ConfigMaps the templates mount",
        "detail",
        "medallion-terraform (used by platform-pipeline)",
    );
    failed_with(
        "ConfigMaps the templates mount",
        "fix",
        "kubectl create configmap medallion-terraform",
    );
    let identity = failed("ServiceAccount argo/medallion-workflow");
    assert_eq!(identity["ok"], false);
    assert_eq!(
        failed("argo/medallion-workflow may: deploy releases models (kubernetes target)")["ok"],
        true
    );
    assert!(run.stderr.contains("check(s) failed"), "{}", run.stderr);
}
