//! Images: every `image:` names one this repository builds (a Dockerfile target) or an allowed
//! upstream image.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Document, Sink};

fn check_images(
    value: &Value,
    path: &str,
    images: &BTreeSet<String>,
    add: &mut impl FnMut(&str, String),
) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if k == "image"
                    && let Some(reference) = v.as_str()
                {
                    let base = image_name(reference);
                    if !images.contains(base) && upstream_image(reference).is_none() {
                        add(
                            &child,
                            format!(
                                "image {reference:?} is not one this repository builds (Dockerfile targets: {}) nor an allowed upstream image ({})",
                                images.iter().cloned().collect::<Vec<_>>().join(", "),
                                UPSTREAM_IMAGES
                                    .iter()
                                    .map(|(i, _)| *i)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        );
                    }
                } else {
                    check_images(v, &child, images, add);
                }
            }
        }
        Value::Array(list) => {
            for (i, v) in list.iter().enumerate() {
                check_images(v, &format!("{path}[{i}]"), images, add);
            }
        }
        _ => {}
    }
}

/// Upstream images the templates may use besides ours (the platform pipeline's terraform), each
/// with the tool `medallion run` runs locally in its place. One list, for lint and the runner.
pub const UPSTREAM_IMAGES: &[(&str, &str)] = &[("hashicorp/terraform", "terraform")];

/// The local tool of an allowed upstream image (`docker.io/hashicorp/terraform:1.11.4` →
/// `terraform`), or `None`.
pub fn upstream_image(reference: &str) -> Option<&'static str> {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let repo = without_digest
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .map_or(without_digest, |(r, _)| r);
    let repo = repo.strip_prefix("docker.io/").unwrap_or(repo);
    UPSTREAM_IMAGES
        .iter()
        .find(|(i, _)| *i == repo)
        .map(|(_, tool)| *tool)
}

/// `ghcr.io/org/medallion-import:0.1.0` → `medallion-import`.
pub fn image_name(reference: &str) -> &str {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split(':').next().unwrap_or(last)
}

/// The images of one document, and the names in a Kustomization's `images:` (which set the tags).
pub(crate) fn check(doc: &Document, images: &BTreeSet<String>, sink: &mut Sink<'_>) {
    check_images(&doc.value, "", images, &mut |p: &str, m: String| {
        sink.add(p, m, "")
    });
    if doc.kind() != "Kustomization" {
        return;
    }
    for (i, entry) in super::list(&doc.value, "/images").enumerate() {
        let name = super::text(entry, "name");
        if !images.contains(image_name(name)) {
            sink.add(
                &format!("images[{i}].name"),
                format!("image {name:?} is not one this repository builds"),
                "",
            );
        }
    }
}
