//! The user's settings file (`rt/tui.json` in the platform config directory,
//! or the path given by `--config` / `RT_TUI_CONFIG`): the ticker watchlist.

use std::path::{Path, PathBuf};

use rt_protocol::ticker::Symbol;
use serde::{Deserialize, Serialize};

/// The watchlist a new user starts with.
pub const DEFAULT_WATCHLIST: [&str; 5] = ["AAPL", "MSFT", "IBM", "GOOGL", "AMZN"];

/// Environment variable naming the settings file (tests point it elsewhere).
pub const CONFIG_ENV: &str = "RT_TUI_CONFIG";

/// The largest settings file read; anything bigger is refused.
pub const MAX_SETTINGS_BYTES: u64 = 64 * 1024;

/// The most symbols a watchlist holds.
pub const MAX_WATCHLIST: usize = 50;

/// Why the settings could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_SETTINGS_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path} is not valid settings JSON: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Everything kept between runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub watchlist: Vec<Symbol>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            watchlist: DEFAULT_WATCHLIST
                .iter()
                .filter_map(|s| Symbol::parse(s).ok())
                .collect(),
        }
    }
}

/// `rt/tui.json` in the platform's config directory.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "rt").map(|d| d.config_dir().join("tui.json"))
}

impl Settings {
    /// Reads `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(source) => {
                return Err(SettingsError::Read {
                    path: path.into(),
                    source,
                });
            }
        };
        if meta.len() > MAX_SETTINGS_BYTES {
            return Err(SettingsError::TooLarge { path: path.into() });
        }
        let bytes = std::fs::read(path).map_err(|source| SettingsError::Read {
            path: path.into(),
            source,
        })?;
        let mut s: Settings =
            serde_json::from_slice(&bytes).map_err(|source| SettingsError::Parse {
                path: path.into(),
                source,
            })?;
        let mut seen = std::collections::HashSet::new();
        s.watchlist.retain(|sym| seen.insert(sym.clone()));
        s.watchlist.truncate(MAX_WATCHLIST);
        Ok(s)
    }

    /// Writes `path` atomically (temporary file, then rename), creating its
    /// directory.
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let err = |source| SettingsError::Write {
            path: path.into(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut json =
            serde_json::to_vec_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        json.push(b'\n');
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_gives_defaults_and_save_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/tui.json");
        let s = Settings::load(&path).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.watchlist.len(), 5);
        let mut s2 = s.clone();
        s2.watchlist.pop();
        s2.save(&path).unwrap();
        assert_eq!(Settings::load(&path).unwrap(), s2);
    }

    #[test]
    fn bad_files_are_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tui.json");
        std::fs::write(&path, "{\"watchlist\": [\"<b>\"]}").unwrap();
        let e = Settings::load(&path).unwrap_err();
        assert!(matches!(e, SettingsError::Parse { .. }), "{e}");
        std::fs::write(&path, "not json").unwrap();
        assert!(Settings::load(&path).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not json");
        std::fs::write(&path, vec![b' '; MAX_SETTINGS_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            Settings::load(&path),
            Err(SettingsError::TooLarge { .. })
        ));
    }

    #[test]
    fn duplicates_are_dropped_and_symbols_normalised() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tui.json");
        std::fs::write(&path, r#"{"watchlist":["ibm","IBM","aapl"]}"#).unwrap();
        let s = Settings::load(&path).unwrap();
        let names: Vec<_> = s.watchlist.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["IBM", "AAPL"]);
    }
}
