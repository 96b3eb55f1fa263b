//! The executor plugin against the real server on a loopback port: the agent's exact request
//! shapes (foreign template, ours with inputs substituted, unknown action, missing and wrong
//! token, oversized body, malformed JSON) with status codes and replies checked field by field;
//! an approval that requeues, succeeds after `medallion approve --grant` and stays decided;
//! quality checks over real profiles; the shipped manifests against Argo's own JSON schema.
//!
//! Model versions are written into the lake as files here, in the layout `medallion-train` will
//! use (models/<model>/v<N>/metrics.json, aliases/<alias>.json): the training step is not built yet.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{PluginServer, generate, medallion, py, repo, scale_column, silver, step};

const TOKEN: &str = "agent-token-1";

fn call(template: Value) -> Value {
    json!({
        "workflow": {"metadata": {"name": "house-price-abc12", "namespace": "argo", "uid": "6f1d2c3e-0000-4b5a-9c8d-112233445566"}},
        "template": template,
    })
}

fn ours(name: &str, action: Value) -> Value {
    call(
        json!({"name": name, "inputs": {}, "outputs": {}, "metadata": {}, "plugin": {"medallion": action}}),
    )
}

fn ok(server: &PluginServer, body: &Value) -> Value {
    let (status, text) = server.execute(Some(TOKEN), body);
    assert_eq!(status, 200, "{text}\n{}", server.logs());
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn outputs(reply: &Value) -> std::collections::BTreeMap<String, String> {
    reply["node"]["outputs"]["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap().to_string(),
                        p["value"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn write_json(lake: &Path, rel: &str, value: &Value) {
    let path = lake.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

/// house-price v1 (r2 0.80, production) and v2 (given metrics) in the lake.
fn models(lake: &Path, v2: Value) {
    write_json(
        lake,
        "models/house-price/v1/metrics.json",
        &json!({"r2": 0.80, "rmse": 30000.0, "mae": 21000.0}),
    );
    write_json(lake, "models/house-price/v2/metrics.json", &v2);
    write_json(
        lake,
        "models/house-price/aliases/production.json",
        &json!({"model": "house-price", "alias": "production", "version": 1, "updated_at": "2026-11-20T10:00:00Z", "updated_by": "ci"}),
    );
}

#[test]
fn the_agents_request_shapes_get_the_documented_replies() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    let houses = repo().join("examples/data/houses.csv");
    let version = silver(lake_s, "houses", &houses, "houses.yaml");
    let server = PluginServer::start(lake_s, TOKEN, &["--max-body-bytes", "65536"]);

    // Argo's hello plugin template: not ours, so `{}` and the agent asks the next plugin.
    let hello = call(json!({"name": "main", "plugin": {"hello": {}}}));
    assert_eq!(server.execute(Some(TOKEN), &hello), (200, "{}".to_string()));
    let container = call(json!({"name": "main", "container": {"image": "x"}}));
    assert_eq!(
        server.execute(Some(TOKEN), &container),
        (200, "{}".to_string())
    );

    // Token: missing, wrong, or a non-bearer scheme → 403 with no detail.
    assert_eq!(server.execute(None, &hello), (403, String::new()));
    assert_eq!(
        server.execute(Some("agent-token-2"), &hello),
        (403, String::new())
    );
    let basic = server.request(
        "POST",
        "/api/v1/template.execute",
        &[("Authorization", "Basic YWdlbnQ6dG9rZW4=")],
        hello.to_string().as_bytes(),
    );
    assert_eq!(basic, (403, String::new()));

    // Any other path → 404 (the agent never calls it again).
    assert_eq!(server.request("POST", "/api/v1/other", &[], b"{}").0, 404);
    assert_eq!(server.request("GET", "/", &[], b"").0, 404);

    // Oversized → 413; malformed → 400 with a one-line reason.
    let big = vec![b' '; 70_000];
    let (status, body) = server.request(
        "POST",
        "/api/v1/template.execute",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        &big,
    );
    assert_eq!(status, 413, "{body}");
    let (status, body) = server.request(
        "POST",
        "/api/v1/template.execute",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        br#"{"workflow": {"metadata": "#,
    );
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "medallion plugin: the request body is not a template.execute call: EOF while parsing a value at line 1 column 26"
    );
    let (status, body) = server.execute(Some(TOKEN), &json!({"template": {}}));
    assert_eq!(status, 400);
    assert!(body.contains("missing field `workflow`"), "{body}");

    // Ours, with inputs already substituted by Argo (the version arrives as a string).
    let reply = ok(
        &server,
        &call(json!({
            "name": "latest-silver",
            "inputs": {"parameters": [{"name": "version", "value": version}]},
            "outputs": {"parameters": [{"name": "version", "valueFrom": {"supplied": {}}}]},
            "plugin": {"medallion": {"lookup": {"dataset": "houses", "version": version, "fields": {"bronze": "/parents/0/version"}}}}
        })),
    );
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(lake.join(format!("silver/houses/v{version}/_manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(reply["node"]["phase"], "Succeeded");
    assert_eq!(
        reply["node"]["message"],
        format!("silver houses v{version}")
    );
    assert!(reply.get("requeue").is_none());
    let out = outputs(&reply);
    assert_eq!(out["found"], "true");
    assert_eq!(out["version"], version);
    assert_eq!(out["rows"], manifest["rows"].to_string());
    assert_eq!(
        out["content-sha256"],
        manifest["content_sha256"].as_str().unwrap()
    );
    assert_eq!(out["bronze"], "1");
    assert!(
        out["uri"].ends_with(&format!("/silver/houses/v{version}")),
        "{}",
        out["uri"]
    );
    // latest resolves to the same version.
    let latest = ok(
        &server,
        &ours("l", json!({"lookup": {"dataset": "houses"}})),
    );
    assert_eq!(outputs(&latest)["version"], version);

    // Unknown action, bad fields, several actions: node Failed naming the field, never a 500.
    let failed = |action: Value, expected: &str| {
        let reply = ok(&server, &ours("t", action));
        assert_eq!(reply["node"]["phase"], "Failed", "{reply}");
        assert_eq!(reply["node"]["message"], expected, "{reply}");
    };
    failed(
        json!({"deploy": {}}),
        "plugin.medallion.deploy is not an action of this plugin; use one of approve, lookup, check",
    );
    failed(
        json!({"lookup": {"datset": "houses"}}),
        "plugin.medallion.lookup: unknown field `datset`, expected one of `dataset`, `layer`, `model`, `alias`, `version`, `fields`, `if_missing`, `lake`",
    );
    failed(
        json!({"lookup": {"dataset": "houses", "version": "seven"}}),
        "plugin.medallion.lookup: version \"seven\" is not a version (a number from 1, or latest)",
    );
    failed(
        json!({"lookup": {"dataset": "Houses!"}}),
        "plugin.medallion.lookup.dataset: dataset name 'Houses!' is not allowed: use lowercase letters, digits, '-' and '_' only",
    );
    failed(
        json!({"lookup": {}, "check": {}}),
        "plugin.medallion must hold exactly one action (approve, lookup, check), found keys check, lookup",
    );
    failed(
        json!({"lookup": {"dataset": "sales"}}),
        &format!(
            "silver sales has no versions yet in {}",
            std::fs::canonicalize(&lake)
                .map(|p| format!("file://{}", p.display()))
                .unwrap()
        ),
    );
    let reply = ok(
        &server,
        &ours(
            "t",
            json!({"lookup": {"dataset": "houses", "lake": "/somewhere/else"}}),
        ),
    );
    assert!(
        reply["node"]["message"].as_str().unwrap().starts_with("plugin.medallion.lookup.lake: file:///somewhere/else is not the lake this plugin serves"),
        "{reply}"
    );
    let empty = ok(
        &server,
        &ours(
            "t",
            json!({"lookup": {"model": "house-price", "if_missing": "empty"}}),
        ),
    );
    assert_eq!(empty["node"]["phase"], "Succeeded");
    assert_eq!(outputs(&empty)["found"], "false");

    // Logs are JSON lines with the workflow's name and uid.
    let logs = server.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("\"action\":\"lookup\""))
        .unwrap_or_else(|| panic!("no lookup log line in {logs}"));
    let log: Value = serde_json::from_str(line).unwrap();
    assert_eq!(log["fields"]["workflow"], "house-price-abc12");
    assert_eq!(log["fields"]["uid"], "6f1d2c3e-0000-4b5a-9c8d-112233445566");
    assert!(!logs.contains(TOKEN), "the token reached the logs");

    // The token file is re-read when it changes; an unreadable one answers 503, never lets in.
    std::fs::write(&server.token_file, "agent-token-2").unwrap();
    assert_eq!(server.execute(Some(TOKEN), &hello).0, 403);
    assert_eq!(
        server.execute(Some("agent-token-2"), &hello),
        (200, "{}".to_string())
    );
    std::fs::remove_file(&server.token_file).unwrap();
    let (status, body) = server.execute(Some("agent-token-2"), &hello);
    assert_eq!(
        (status, body.as_str()),
        (503, "the plugin cannot read its agent token")
    );
    assert!(
        server.logs().contains("cannot read the agent token"),
        "{}",
        server.logs()
    );
}

#[test]
fn an_approval_requeues_then_succeeds_after_a_grant_and_stays_decided() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    models(&lake, json!({"r2": 0.83, "rmse": 28000.0, "mae": 20500.0}));
    let server = PluginServer::start(lake_s, TOKEN, &[]);
    let gate = |review: &str| {
        ours(
            "release-gate",
            json!({"approve": {
                "gate": "release",
                "model": "house-price",
                "version": "2",
                "policy": {"thresholds": ["r2 >= 0.75"], "not_worse_than": "production", "review": review},
                "requeue": "5s",
            }}),
        )
    };

    // Policy alone: approved, with the comparison against production in the reasons.
    let auto = ok(&server, &gate("never"));
    assert_eq!(auto["node"]["phase"], "Succeeded");
    assert_eq!(
        auto["node"]["message"],
        "approved by policy: r2 = 0.83 >= 0.75; not worse than production (v1): mae 20500 vs 21000, r2 0.83 vs 0.8, rmse 28000 vs 30000"
    );
    assert_eq!(outputs(&auto)["decided-by"], "policy");

    // A person must decide: Running with requeue, a request in the lake, the command in the message.
    let waiting = ok(&server, &gate("always"));
    assert_eq!(waiting["node"]["phase"], "Running", "{waiting}");
    assert_eq!(waiting["requeue"], "5s");
    assert_eq!(outputs(&waiting)["verdict"], "waiting");
    let message = waiting["node"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "medallion approve --grant house-price-abc12 --gate release --by <you> --reason <why>"
        ),
        "{message}"
    );
    let request = lake.join("approvals/6f1d2c3e-0000-4b5a-9c8d-112233445566/release/request.json");
    let first: Value = serde_json::from_slice(&std::fs::read(&request).unwrap()).unwrap();
    // Called again (requeue): still waiting, same deadline.
    let again = ok(&server, &gate("always"));
    assert_eq!(again["node"]["phase"], "Running");
    let second: Value = serde_json::from_slice(&std::fs::read(&request).unwrap()).unwrap();
    assert_eq!(first["deadline"], second["deadline"]);

    let list = medallion(&["approve", "--list", "--lake", lake_s], &[]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(
        list.stdout.contains("house-price-abc12") && list.stdout.contains("waiting"),
        "{}",
        list.stdout
    );

    let grant = medallion(
        &[
            "approve",
            "--grant",
            "house-price-abc12",
            "--by",
            "alice",
            "--reason",
            "checked the card",
            "--lake",
            lake_s,
        ],
        &[],
    );
    assert_eq!(grant.code, 0, "{}", grant.stderr);
    assert!(
        grant
            .stdout
            .starts_with("alice granted gate release of workflow house-price-abc12"),
        "{}",
        grant.stdout
    );

    let decided = ok(&server, &gate("always"));
    assert_eq!(decided["node"]["phase"], "Succeeded", "{decided}");
    assert!(decided.get("requeue").is_none());
    let out = outputs(&decided);
    assert_eq!(
        (out["verdict"].as_str(), out["decided-by"].as_str()),
        ("approved", "alice")
    );
    assert!(
        decided["node"]["message"]
            .as_str()
            .unwrap()
            .starts_with("granted by alice at ")
    );

    // Decisions are final: a second decision is refused (exit 3), the gate stays approved.
    let reject = medallion(
        &[
            "approve",
            "--reject",
            "house-price-abc12",
            "--by",
            "bob",
            "--reason",
            "no",
            "--lake",
            lake_s,
        ],
        &[],
    );
    assert_eq!(reject.code, 3, "{}", reject.stderr);
    assert!(
        reject.stderr.contains("was already granted by alice"),
        "{}",
        reject.stderr
    );
    assert_eq!(ok(&server, &gate("always"))["node"]["phase"], "Succeeded");

    // Deciding what is not waiting, or without saying who: clear errors, nothing written.
    let unknown = medallion(
        &[
            "approve", "--grant", "nope", "--by", "a", "--reason", "b", "--lake", lake_s,
        ],
        &[],
    );
    assert_eq!(unknown.code, 2);
    assert!(
        unknown
            .stderr
            .contains("list waiting gates with `medallion approve --list`"),
        "{}",
        unknown.stderr
    );
    let anonymous = medallion(&["approve", "--grant", "nope", "--lake", lake_s], &[]);
    assert_eq!(anonymous.code, 2, "{}", anonymous.stderr);
}

#[test]
fn approvals_reject_on_policy_and_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    // The candidate is better on r2 but worse on rmse than production.
    models(&lake, json!({"r2": 0.81, "rmse": 33000.0, "mae": 20000.0}));
    let server = PluginServer::start(lake_s, TOKEN, &[]);
    let approve = |policy: Value, extra: Value| {
        let mut args = json!({"model": "house-price", "version": 2, "policy": policy});
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        ok(&server, &ours("gate", json!({"approve": args})))
    };

    let worse = approve(json!({"not_worse_than": "production"}), json!({}));
    assert_eq!(worse["node"]["phase"], "Failed");
    assert_eq!(
        worse["node"]["message"],
        "rejected by policy: worse than production (v1): rmse 33000 vs 30000"
    );
    let tolerant = approve(
        json!({"not_worse_than": "production", "tolerance": 0.15}),
        json!({}),
    );
    assert_eq!(tolerant["node"]["phase"], "Succeeded", "{tolerant}");
    let threshold = approve(json!({"thresholds": ["r2 >= 0.9"]}), json!({}));
    assert_eq!(
        threshold["node"]["message"],
        "rejected by policy: r2 = 0.81 breaks r2 >= 0.9"
    );
    // Metrics from an upstream output parameter (JSON text) instead of the lake.
    let inline = ok(
        &server,
        &ours(
            "gate",
            json!({"approve": {"metrics": "{\"r2\": 0.5}", "policy": {"thresholds": ["r2 >= 0.75"]}}}),
        ),
    );
    assert_eq!(
        inline["node"]["message"],
        "rejected by policy: r2 = 0.5 breaks r2 >= 0.75"
    );

    // A review with a 1 s timeout fails once the deadline passes.
    let timed = |()| {
        approve(
            json!({"review": "always"}),
            json!({"timeout": "1s", "requeue": "1s"}),
        )
    };
    assert_eq!(timed(())["node"]["phase"], "Running");
    std::thread::sleep(std::time::Duration::from_millis(1300));
    let late = timed(());
    assert_eq!(late["node"]["phase"], "Failed", "{late}");
    assert!(
        late["node"]["message"]
            .as_str()
            .unwrap()
            .starts_with("no decision before the deadline"),
        "{late}"
    );
    assert_eq!(outputs(&late)["decided-by"], "timeout");

    // Bad policy and arguments name the field.
    let bad = approve(json!({"thresholds": ["r2 => 0.7"]}), json!({}));
    assert!(
        bad["node"]["message"]
            .as_str()
            .unwrap()
            .starts_with("plugin.medallion.approve: policy: '=>' in 'r2 => 0.7' is not one of"),
        "{bad}"
    );
    let bad = approve(json!({}), json!({"requeue": "soon"}));
    assert_eq!(
        bad["node"]["message"],
        "plugin.medallion.approve.requeue: 'soon' is not a duration: a unit without a number (write it like 30s, 5m, 1h30m)"
    );
    let no_policy = ok(
        &server,
        &ours(
            "gate",
            json!({"approve": {"model": "house-price", "version": 2}}),
        ),
    );
    assert_eq!(
        no_policy["node"]["message"],
        "plugin.medallion.approve.policy: is required (inline, or policy_file in the lake)"
    );
}

#[test]
fn checks_gate_on_the_profiles_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    generate("houses", 3000, 1, &a);
    generate("houses", 3000, 2, &b);
    // Shift living_area (column 4) in the second file so its profile reports drift.
    scale_column(&b, 4, 1.6);
    silver(lake_s, "houses", &a, "houses.yaml");
    silver(lake_s, "houses", &b, "houses.yaml");
    let server = PluginServer::start(lake_s, TOKEN, &[]);

    let missing = ok(
        &server,
        &ours("q", json!({"check": {"dataset": "houses", "version": "1"}})),
    );
    assert_eq!(missing["node"]["phase"], "Failed");
    assert_eq!(
        missing["node"]["message"],
        "silver houses v1 has no profile (profiles/silver/houses/v1/profile.json); run medallion-profile on it first"
    );
    for v in ["1", "2"] {
        let run = step(
            "medallion-profile",
            lake_s,
            &["--dataset", "houses", "--version", v],
            &[],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let first = ok(
        &server,
        &ours("q", json!({"check": {"dataset": "houses", "version": 1}})),
    );
    assert_eq!(first["node"]["phase"], "Succeeded", "{first}");
    assert_eq!(
        first["node"]["message"],
        "silver houses v1 passes (its profile has no drift report)"
    );
    assert_eq!(outputs(&first)["passed"], "true");

    let drifted = ok(&server, &ours("q", json!({"check": {"dataset": "houses"}})));
    assert_eq!(drifted["node"]["phase"], "Failed", "{drifted}");
    let msg = drifted["node"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("silver houses v2 fails: drift: living_area (PSI "),
        "{msg}"
    );
    let out = outputs(&drifted);
    assert_eq!(
        (out["drift"].as_str(), out["drifted-columns"].as_str()),
        ("true", "living_area")
    );
    let scores: Value = serde_json::from_str(&out["scores"]).unwrap();
    assert!(scores["living_area"].as_f64().unwrap() > 0.5, "{scores}");

    let warn = ok(
        &server,
        &ours(
            "q",
            json!({"check": {"dataset": "houses", "drift": "warn"}}),
        ),
    );
    assert_eq!(warn["node"]["phase"], "Succeeded");
    assert!(
        warn["node"]["message"]
            .as_str()
            .unwrap()
            .contains("; warnings: drift: living_area"),
        "{warn}"
    );
    let loose = ok(
        &server,
        &ours(
            "q",
            json!({"check": {"dataset": "houses", "max_psi": "50"}}),
        ),
    );
    assert_eq!(loose["node"]["phase"], "Succeeded", "{loose}");
    let bad = ok(
        &server,
        &ours(
            "q",
            json!({"check": {"dataset": "houses", "drift": "panic"}}),
        ),
    );
    assert_eq!(
        bad["node"]["message"],
        "plugin.medallion.check: unknown variant `panic`, expected one of `fail`, `warn`, `ignore`"
    );
}

#[test]
fn shipped_manifests_are_generated_and_valid_against_argos_schema() {
    let plugin_dir = repo().join("executor-plugin");
    // The checked-in ConfigMap is exactly what `medallion plugin configmap` generates.
    let regenerated = medallion(
        &[
            "plugin",
            "configmap",
            plugin_dir.join("plugin.yaml").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(regenerated.code, 0, "{}", regenerated.stderr);
    let checked_in =
        std::fs::read_to_string(plugin_dir.join("medallion-executor-plugin-configmap.yaml"))
            .unwrap();
    assert_eq!(
        regenerated.stdout, checked_in,
        "executor-plugin/medallion-executor-plugin-configmap.yaml drifted from plugin.yaml; regenerate it with `medallion plugin configmap executor-plugin/plugin.yaml -o executor-plugin/medallion-executor-plugin-configmap.yaml`"
    );

    // plugin.yaml against ExecutorPlugin, the example against the whole schema (oneOf by kind).
    let schema = crate::support::argo_schema("workflows-schema.json");
    let report = py(
        "argo_schema.py",
        &[
            schema.to_str().unwrap(),
            &format!(
                "io.argoproj.workflow.v1alpha1.ExecutorPlugin={}",
                plugin_dir.join("plugin.yaml").display()
            ),
            &format!(
                "={}",
                plugin_dir.join("examples/plugin-actions.yaml").display()
            ),
        ],
    );
    assert_eq!(report.trim(), "2 documents valid", "{report}");
    // The checker really rejects: a template with a plugin that is not an object.
    let broken = tempfile::NamedTempFile::new().unwrap();
    let text = std::fs::read_to_string(plugin_dir.join("examples/plugin-actions.yaml")).unwrap();
    std::fs::write(
        broken.path(),
        text.replacen(
            "serviceAccountName: medallion-workflow",
            "serviceAccountName: [not, a, string]",
            1,
        ),
    )
    .unwrap();
    let out = std::process::Command::new(crate::support::python())
        .arg(repo().join("tests/py/argo_schema.py"))
        .arg(&schema)
        .arg(format!("={}", broken.path().display()))
        .output()
        .unwrap();
    assert!(!out.status.success(), "a broken workflow passed the schema");

    // The sidecar the controller will inject: the port the binary defaults to, the agent's uid,
    // the limits Argo requires.
    let plugin: Value = serde_json::from_str(&py(
        "yaml_to_json.py",
        &[plugin_dir.join("plugin.yaml").to_str().unwrap()],
    ))
    .unwrap();
    let container = &plugin[0]["spec"]["sidecar"]["container"];
    assert_eq!(container["ports"][0]["containerPort"], 10707);
    assert_eq!(container["securityContext"]["runAsUser"], 8737);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"][0],
        "ALL"
    );
    let rbac: Value = serde_json::from_str(&py(
        "yaml_to_json.py",
        &[plugin_dir.join("rbac.yaml").to_str().unwrap()],
    ))
    .unwrap();
    let role = rbac
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "Role")
        .unwrap();
    let rules = role["rules"].to_string();
    assert!(
        rules.contains("\"workflowtasksets\"") && rules.contains("\"watch\""),
        "{rules}"
    );
    assert!(
        rules.contains("\"workflowtasksets/status\"") && rules.contains("\"patch\""),
        "{rules}"
    );
}
