//! carbide's configuration plumbing, shared by every binary (collector, sql-to-graphite,
//! alerter, carbide serve/up). The only crate of the workspace that uses `serde_yaml`
//! (archived upstream: swapping it is this crate only).
//!
//! Module map:
//! - [`error`]: [`ConfigError`], printed `file:line:column: message`.
//! - [`yaml`]: decoding ([`from_str`], [`load`]), messages with "did you mean" and duration /
//!   size hints, and positions of values found after decoding ([`value_position`],
//!   [`locate`]).
//! - [`env`]: `${NAME}` substitution inside every scalar of every file.
//! - [`suggest`]: [`closest`], the known name nearest to a typo.
//! - [`secret`]: [`Secret`], a string that never prints itself.
//! - [`logging`]: every binary's log setup (stderr, colours only on a terminal, the filter).

pub mod env;
pub mod error;
pub mod logging;
pub mod secret;
pub mod suggest;
pub mod yaml;

pub use error::{ConfigError, ConfigErrors};
pub use secret::Secret;
pub use suggest::closest;
pub use yaml::{deserialize_from_str, from_str, load, locate, read_type, value_position, Seg};

#[cfg(test)]
mod tests {
    /// ARCHITECTURE.md's invariant: YAML is decoded only here, so `serde_yaml` is a
    /// dependency of this crate and of no other workspace member.
    #[test]
    fn serde_yaml_is_only_this_crates() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let workspace = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        let members = workspace
            .lines()
            .find_map(|l| l.strip_prefix("members = ["))
            .expect("the workspace's members line");
        let mut manifests = vec!["Cargo.toml".to_string()];
        for m in members
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|m| *m != "conf")
        {
            manifests.push(format!("{m}/Cargo.toml"));
        }
        assert!(manifests.len() >= 4, "{manifests:?}");
        for m in manifests {
            let text = std::fs::read_to_string(root.join(&m)).unwrap();
            assert!(
                !text.contains("serde_yaml"),
                "{m} depends on serde_yaml: decode YAML through conf"
            );
        }
    }
}
