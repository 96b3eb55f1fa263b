//! Images: `scripts/images` builds the plugin and import images with buildah (from binaries
//! compiled on this host, Dockerfile `BINARIES=host`), and runs each image's binary with
//! `--version` inside the image. Checked here: the names are the ones plugin.yaml uses, the sizes
//! stay under the bounds, the binaries start as the image's non-root user. buildah is
//! installed by scripts/test; if it is missing the test fails saying so.

use std::process::Command;

use crate::support::repo;

#[test]
fn plugin_and_import_images_build_and_start_as_non_root() {
    let storage = tempfile::tempdir().unwrap();
    // A clean environment: the variables `cargo test` sets would make the nested cargo build
    // rebuild what a plain `scripts/images` already built.
    let mut cmd = Command::new(repo().join("scripts/images"));
    cmd.args(["plugin", "import"]).env_clear();
    for keep in [
        "PATH",
        "HOME",
        "USER",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "CARGO_HOME",
        "TMPDIR",
    ] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    let out = cmd
        .env("MEDALLION_IMAGES_STORAGE", storage.path())
        .output()
        .expect("run scripts/images");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/images failed (buildah and musl-tools come from Debian, installed by scripts/test):\n{stdout}\n{stderr}"
    );
    let sizes: Vec<(String, u64)> = stdout
        .lines()
        .map(|l| {
            let (image, bytes) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not '<image> <bytes>': {l}"));
            (
                image.to_string(),
                bytes.parse().unwrap_or_else(|_| panic!("bytes in {l}")),
            )
        })
        .collect();
    let version = env!("CARGO_PKG_VERSION");
    let plugin_image = format!("ghcr.io/medallion-dev/medallion-plugin:{version}");
    let import_image = format!("ghcr.io/medallion-dev/medallion-import:{version}");
    assert_eq!(
        sizes.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>(),
        vec![plugin_image.as_str(), import_image.as_str()]
    );
    assert!(
        sizes[0].1 <= 15_000_000,
        "plugin image is {} bytes, over 15 MB",
        sizes[0].1
    );
    assert!(
        sizes[1].1 <= 25_000_000,
        "import image is {} bytes, over 25 MB",
        sizes[1].1
    );
    assert!(
        sizes.iter().all(|(_, b)| *b > 1_000_000),
        "suspiciously small images: {sizes:?}"
    );
    // Started inside the image, as the image's numeric non-root user.
    assert!(
        stderr.contains(&format!("runs as 8737:0: medallion-plugin {version}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("runs as 65532:65532: medallion-import {version}")),
        "{stderr}"
    );

    // plugin.yaml pulls exactly the image built here.
    let plugin_yaml = std::fs::read_to_string(repo().join("executor-plugin/plugin.yaml")).unwrap();
    assert!(
        plugin_yaml.contains(&format!("image: {plugin_image}\n")),
        "plugin.yaml does not use {plugin_image}"
    );
}
