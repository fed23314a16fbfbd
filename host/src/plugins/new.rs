//! `grito plugins new`: writes a plugin crate that builds for `wasm32-wasip2`
//! and passes `grito plugins check` unchanged, with a copy of this host's WIT
//! package so it builds outside this repository.

use std::path::{Path, PathBuf};

use super::PluginKind;
use super::wit_package;

const CARGO_TOML: &str = include_str!("template/Cargo.toml.in");
const README: &str = include_str!("template/README.md.in");
const GITIGNORE: &str = include_str!("template/gitignore.in");
const ACTION: &str = include_str!("template/action.rs.in");
const CONDITION: &str = include_str!("template/condition.rs.in");
const NORMALIZER: &str = include_str!("template/normalizer.rs.in");

/// Maximum plugin name length in bytes, as the loader accepts it.
const MAX_NAME_LEN: usize = 64;

/// Writes the crate for plugin `name` of `kind` into `parent/name` and returns that folder.
pub fn create(name: &str, kind: PluginKind, parent: &Path) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    let dir = parent.join(name);
    anyhow::ensure!(!dir.exists(), "{} already exists; choose another name or --dir, nothing was written", dir.display());

    let lib = match kind {
        PluginKind::Action => ACTION,
        PluginKind::Condition => CONDITION,
        PluginKind::Normalizer => NORMALIZER,
    };
    let files = [
        ("Cargo.toml", CARGO_TOML),
        ("README.md", README),
        (".gitignore", GITIGNORE),
        ("src/lib.rs", lib),
        ("wit/grito.wit", wit_package::WIT),
    ];

    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::create_dir_all(dir.join("wit"))?;
    for (path, template) in files {
        let text = if path.ends_with(".wit") { template.to_owned() } else { fill(template, name, kind) };
        std::fs::write(dir.join(path), text).map_err(|error| anyhow::anyhow!("cannot write {}: {error}", dir.join(path).display()))?;
    }
    tracing::info!(plugin = name, kind = %kind, dir = %dir.display(), "plugin crate created");
    Ok(dir)
}

/// Plugin names become crate names, file names and `/ingest/{plugin}` path
/// segments, so they are kept to lowercase letters, digits and hyphens,
/// starting with a letter.
fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = name.len() <= MAX_NAME_LEN
        && name.starts_with(|character: char| character.is_ascii_lowercase())
        && !name.ends_with('-')
        && name.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    anyhow::ensure!(
        valid,
        "invalid plugin name `{name}`: use 1 to {MAX_NAME_LEN} lowercase letters, digits and hyphens, starting with a letter, for example `task-sync`"
    );
    Ok(())
}

fn fill(template: &str, name: &str, kind: PluginKind) -> String {
    template
        .replace("{{name}}", name)
        .replace("{{file}}", &name.replace('-', "_"))
        .replace("{{kind}}", &kind.to_string())
        .replace("{{wit_version}}", wit_package::VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_are_accepted() {
        for name in ["tasks", "task-sync", "crm2"] {
            assert!(check_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn invalid_names_are_rejected() {
        for name in ["", "Tasks", "2fa", "task_sync", "task-", "tarefa-ação", "../x", &"a".repeat(65)] {
            let error = check_name(name).unwrap_err().to_string();
            assert!(error.contains("invalid plugin name"), "{name}: {error}");
        }
    }

    #[test]
    fn existing_folder_is_not_overwritten() {
        let parent = tempfile::tempdir().unwrap();
        std::fs::create_dir(parent.path().join("tasks")).unwrap();
        std::fs::write(parent.path().join("tasks/keep.txt"), "mine").unwrap();

        let error = create("tasks", PluginKind::Action, parent.path()).unwrap_err();

        assert!(error.to_string().contains("already exists"), "{error}");
        assert_eq!(std::fs::read_to_string(parent.path().join("tasks/keep.txt")).unwrap(), "mine");
    }

    #[test]
    fn crate_has_the_wit_and_no_placeholders() {
        let parent = tempfile::tempdir().unwrap();
        for kind in [PluginKind::Action, PluginKind::Condition, PluginKind::Normalizer] {
            let name = format!("sample-{kind}");
            let dir = create(&name, kind, parent.path()).unwrap();
            assert_eq!(std::fs::read_to_string(dir.join("wit/grito.wit")).unwrap(), wit_package::WIT);
            for file in ["Cargo.toml", "README.md", "src/lib.rs"] {
                let text = std::fs::read_to_string(dir.join(file)).unwrap();
                assert!(!text.contains("{{"), "{file} of {kind} keeps a placeholder");
                assert!(text.contains(&name), "{file} of {kind} does not name the plugin");
            }
        }
    }
}
