//! The agent's configuration: the global settings file (`collector.yml`) and one file per
//! collector instance in `collectors.d/`.
//!
//! Everything is read and validated by [`load`] before anything is applied, so a bad file at
//! startup is an exit with code 2 and a bad file on SIGHUP leaves the running config alone.
//! Every error is a [`ConfigError`] printed as `file:line:column: message`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::collectors::{self, Instance};
use crate::paths;
use crate::sender::SenderConfig;
use conf::{self as yaml, ConfigError};

/// The global file read when `--config` is not given (only if it exists).
pub const DEFAULT_GLOBAL_FILE: &str = "collector.yml";
/// The collectors directory used when neither `--collectors-dir` nor `collectors_dir:` is set,
/// beside the global file (`/etc/carbide/collectors.d` for `--config
/// /etc/carbide/collector.yml`), or in the working directory when there is no global file.
pub const DEFAULT_COLLECTORS_DIR: &str = "collectors.d";

/// The spool directory of an agent running as root when `sender.spool_dir` is not set.
pub const ROOT_SPOOL_DIR: &str = "/var/lib/carbide/spool";

/// Where the sender spools while carbon is down when `sender.spool_dir` is not set, so the
/// agent never relies on memory alone: `/var/lib/carbide/spool` for root; otherwise
/// `$XDG_STATE_HOME/carbide/spool`, or `$HOME/.local/state/carbide/spool` (the XDG default)
/// when `XDG_STATE_HOME` is unset or not absolute. `None` when neither applies (no `HOME`).
pub fn default_spool_dir() -> Option<PathBuf> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    default_spool_dir_for(
        root,
        std::env::var_os("XDG_STATE_HOME"),
        std::env::var_os("HOME"),
    )
}

fn default_spool_dir_for(
    root: bool,
    xdg_state_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    if root {
        return Some(PathBuf::from(ROOT_SPOOL_DIR));
    }
    let absolute = |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    let state =
        absolute(xdg_state_home).or_else(|| absolute(home).map(|h| h.join(".local/state")))?;
    Some(state.join("carbide/spool"))
}

/// How the host name in metric paths is found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostnameMethod {
    /// The system host name up to its first dot (like `hostname -s`; Diamond's `fqdn_short`).
    #[default]
    Short,
    /// The canonical name from the resolver (getaddrinfo with AI_CANONNAME), falling back to
    /// the short name. Its dots become path levels, as in Diamond.
    Fqdn,
    /// The `hostname:` setting, as written.
    Fixed,
}

/// The global settings file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    /// How the host name in metric paths is found: `short` (default), `fqdn` or `fixed`.
    #[serde(default)]
    pub hostname_method: HostnameMethod,
    /// The host name to use with `hostname_method: fixed`.
    #[serde(default)]
    pub hostname: Option<String>,
    /// First path level of every metric (default `servers`); may contain dots.
    #[serde(default = "default_prefix")]
    pub path_prefix: String,
    /// Optional last path level appended to every metric.
    #[serde(default)]
    pub path_suffix: Option<String>,
    /// Default collection interval (default `10s`); also the self-metrics interval.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Each collector instance starts at an interval boundary plus a random offset below this
    /// (fixed per instance), so many agents do not hit carbon at once (default `0s`).
    #[serde(default, with = "humantime_serde")]
    pub jitter: Duration,
    /// The collectors directory; relative paths are relative to this file's directory.
    #[serde(default)]
    pub collectors_dir: Option<PathBuf>,
    /// How long SIGTERM waits for the sender to flush (default `10s`).
    #[serde(default = "default_shutdown_timeout", with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Where and how lines are sent (destinations, spool): see the sender's documentation.
    #[serde(default)]
    pub sender: SenderConfig,
    /// Graphite 1.1 tags added to every metric (`name;dc=eu;role=web`), the agent's own
    /// metrics included; an instance's `tags:` adds to these and wins on the same name.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

fn default_prefix() -> String {
    "servers".to_string()
}

fn default_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            hostname_method: HostnameMethod::default(),
            hostname: None,
            path_prefix: default_prefix(),
            path_suffix: None,
            interval: default_interval(),
            jitter: Duration::ZERO,
            collectors_dir: None,
            shutdown_timeout: default_shutdown_timeout(),
            sender: SenderConfig::default(),
            tags: BTreeMap::new(),
        }
    }
}

/// Where the configuration comes from: the command-line flags (which override the defaults).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--config FILE`: must exist. Unset: `./collector.yml` if present.
    pub config: Option<PathBuf>,
    /// `--collectors-dir DIR`: overrides `collectors_dir:` and the default (`collectors.d`
    /// beside the global file).
    pub collectors_dir: Option<PathBuf>,
}

/// The global settings, resolved and validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The global file read, if any.
    pub global_file: Option<PathBuf>,
    /// The collectors directory read.
    pub collectors_dir: PathBuf,
    /// `<prefix>.<host>`, sanitised.
    pub base: String,
    /// Sanitised suffix.
    pub suffix: Option<String>,
    pub interval: Duration,
    pub jitter: Duration,
    pub shutdown_timeout: Duration,
    pub sender: SenderConfig,
    /// The global `tags:`, checked by carbon's rules.
    pub tags: BTreeMap<String, String>,
}

impl Settings {
    /// What decides whether a running instance can be kept across a reload.
    pub fn fingerprint(&self) -> String {
        format!(
            "{}|{:?}|{:?}|{:?}|{:?}",
            self.base, self.suffix, self.interval, self.jitter, self.tags
        )
    }
}

/// One collector instance from `collectors.d/`, validated.
pub struct LoadedInstance {
    pub file: PathBuf,
    /// File name without extension (what `collector test NAME` matches, with the type).
    pub stem: String,
    /// The file's text (a reload keeps an instance whose file did not change).
    pub text: String,
    /// Sanitised path segment after `<prefix>.<host>.`.
    pub segment: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// The global and the instance's tags merged (the instance wins), rendered as `;k=v…`
    /// (empty when there are none).
    pub tags: String,
    pub instance: Instance,
}

impl LoadedInstance {
    pub fn kind(&self) -> &str {
        &self.instance.common.kind
    }
    pub fn enabled(&self) -> bool {
        self.instance.common.enabled
    }
}

/// A complete, validated configuration.
pub struct Loaded {
    pub settings: Settings,
    pub instances: Vec<LoadedInstance>,
}

/// Read and validate the global file and every collector file. All errors found are
/// returned (sorted by file and position), not just the first.
pub fn load(sources: &Sources) -> Result<Loaded, Vec<ConfigError>> {
    let (settings, _) = load_settings(sources).map_err(|e| vec![e])?;
    let instances = load_collectors(&settings)?;
    Ok(Loaded {
        settings,
        instances,
    })
}

fn load_settings(sources: &Sources) -> Result<(Settings, GlobalConfig), ConfigError> {
    let file = match &sources.config {
        Some(f) => Some(f.clone()),
        None => {
            let f = PathBuf::from(DEFAULT_GLOBAL_FILE);
            f.exists().then_some(f)
        }
    };
    let (cfg, text) = match &file {
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| {
                ConfigError::whole_file(f, format!("cannot read the global settings file: {e}"))
            })?;
            let cfg: Option<GlobalConfig> = yaml::from_str(f, &text)?;
            (cfg.unwrap_or_default(), text)
        }
        None => (GlobalConfig::default(), String::new()),
    };
    let settings = resolve_settings(file.as_deref(), &text, &cfg, sources)?;
    Ok((settings, cfg))
}

fn resolve_settings(
    file: Option<&Path>,
    text: &str,
    cfg: &GlobalConfig,
    sources: &Sources,
) -> Result<Settings, ConfigError> {
    let display = file.unwrap_or(Path::new("(defaults)"));
    let err = |key: &str, msg: String| {
        let (l, c) = yaml::value_position(text, key).unwrap_or((0, 0));
        ConfigError::new(display, l, c, msg)
    };
    if cfg.interval < Duration::from_secs(1) {
        return Err(err(
            "interval",
            format!(
                "interval {} is too short: Graphite timestamps are whole seconds, use at least 1s",
                humantime::format_duration(cfg.interval)
            ),
        ));
    }
    if cfg.jitter >= cfg.interval {
        return Err(err(
            "jitter",
            format!(
                "jitter {} must be shorter than the interval ({})",
                humantime::format_duration(cfg.jitter),
                humantime::format_duration(cfg.interval)
            ),
        ));
    }
    let host = match (cfg.hostname_method, &cfg.hostname) {
        (HostnameMethod::Fixed, Some(h)) => h.clone(),
        (HostnameMethod::Fixed, None) => {
            return Err(err(
                "hostname_method",
                "hostname_method: fixed needs `hostname: <name>`".to_string(),
            ))
        }
        (_, Some(_)) => return Err(err(
            "hostname",
            "`hostname` is only used with `hostname_method: fixed`; add that or remove `hostname`"
                .to_string(),
        )),
        (HostnameMethod::Short, None) => short_hostname().map_err(|e| err("hostname_method", e))?,
        (HostnameMethod::Fqdn, None) => fqdn_hostname().map_err(|e| err("hostname_method", e))?,
    };
    for (k, v) in &cfg.tags {
        paths::check_tag(k, v).map_err(|m| tag_err(display, text, k, m))?;
    }
    let prefix = paths::sanitize(&cfg.path_prefix).map_err(|m| err("path_prefix", m))?;
    let host = paths::sanitize(&host).map_err(|m| err("hostname", format!("host name: {m}")))?;
    let suffix = match &cfg.path_suffix {
        Some(s) => Some(paths::sanitize(s).map_err(|m| err("path_suffix", m))?),
        None => None,
    };
    let collectors_dir = match (&sources.collectors_dir, &cfg.collectors_dir) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => match file.and_then(Path::parent) {
            Some(parent) if d.is_relative() => parent.join(d),
            _ => d.clone(),
        },
        // Beside the global file: under systemd the working directory is `/`, so
        // `./collectors.d` would not be the one next to `/etc/carbide/collector.yml`.
        (None, None) => match file.and_then(Path::parent) {
            Some(parent) => parent.join(DEFAULT_COLLECTORS_DIR),
            None => PathBuf::from(DEFAULT_COLLECTORS_DIR),
        },
    };
    let mut sender = cfg.sender.clone();
    sender.spool_dir = match &cfg.sender.spool_dir {
        // Relative to the global file's directory, like `collectors_dir`.
        Some(d) => Some(match file.and_then(Path::parent) {
            Some(parent) if d.is_relative() => parent.join(d),
            _ => d.clone(),
        }),
        None => Some(default_spool_dir().ok_or_else(|| {
            err(
                "sender",
                "no default spool directory (HOME is not set and the agent is not root): set `sender: {spool_dir: /path/to/spool}`".to_string(),
            )
        })?),
    };
    // What the sender would refuse at start: checked here, so `check` catches it too.
    sender
        .validate()
        .map_err(|m| sender_err(display, text, &[], m))?;
    if let Some(dir) = &sender.spool_dir {
        spool_dir_writable(dir).map_err(|m| sender_err(display, text, &["spool_dir"], m))?;
    }
    Ok(Settings {
        global_file: file.map(Path::to_path_buf),
        collectors_dir,
        base: format!("{prefix}.{host}"),
        suffix,
        interval: cfg.interval,
        jitter: cfg.jitter,
        shutdown_timeout: cfg.shutdown_timeout,
        sender,
        tags: cfg.tags.clone(),
    })
}

/// The `sender:` section of a global settings file, for another program that sends through
/// the agent's sender (`sql-to-graphite --config`): decoded and checked as the agent does, with
/// the file's positions, but without `spool_dir` (that program keeps its own spool: two
/// processes must not share one) and without the agent's other settings' checks.
pub fn load_sender(file: &Path) -> Result<SenderConfig, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        ConfigError::whole_file(file, format!("cannot read the settings file: {e}"))
    })?;
    let cfg: Option<GlobalConfig> = yaml::from_str(file, &text)?;
    let mut sender = cfg.unwrap_or_default().sender;
    sender.spool_dir = None;
    sender
        .validate()
        .map_err(|m| sender_err(file, &text, &[], m))?;
    Ok(sender)
}

/// An error about the tag `key` under `tags:`, positioned at it when the file is in block
/// style, else at `tags:`, else about the whole file.
fn tag_err(file: &Path, text: &str, key: &str, msg: String) -> ConfigError {
    let at = conf::locate(text, &[conf::Seg::Key("tags"), conf::Seg::Key(key)])
        .or_else(|| conf::locate(text, &[conf::Seg::Key("tags")]));
    match at {
        Some((l, c)) => ConfigError::new(file, l, c, format!("tags: {msg}")),
        None => ConfigError::whole_file(file, format!("tags: {msg}")),
    }
}

/// An error about `sender:` (or the key under it), positioned at that key's value when the
/// file says it, else at `sender:`, else about the whole file.
fn sender_err(file: &Path, text: &str, key: &[&str], msg: String) -> ConfigError {
    let mut path = vec![conf::Seg::Key("sender")];
    path.extend(key.iter().map(|k| conf::Seg::Key(k)));
    let at = conf::locate(text, &path).or_else(|| conf::locate(text, &path[..1]));
    match at {
        Some((l, c)) => ConfigError::new(file, l, c, msg),
        None => ConfigError::whole_file(file, msg),
    }
}

/// The spool directory must be writable, or creatable (its nearest existing ancestor
/// writable): the sender creates it at start and spools into it during an outage, which is
/// too late to learn it cannot.
fn spool_dir_writable(dir: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let mut at = dir;
    loop {
        match std::fs::metadata(at) {
            Ok(m) if !m.is_dir() => {
                return Err(format!(
                    "spool_dir {}: {} is not a directory",
                    dir.display(),
                    at.display()
                ))
            }
            Ok(_) => break,
            Err(_) => match at.parent() {
                Some(p) if !p.as_os_str().is_empty() => at = p,
                _ => return Ok(()), // relative path under the working directory
            },
        }
    }
    let c = std::ffi::CString::new(at.as_os_str().as_bytes())
        .map_err(|_| format!("spool_dir {}: contains a NUL byte", dir.display()))?;
    // SAFETY: `c` is a valid NUL-terminated path; access only reads it.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        let e = std::io::Error::last_os_error();
        let what = if at == dir {
            "is not writable".to_string()
        } else {
            format!("cannot be created: {} is not writable", at.display())
        };
        return Err(format!(
            "spool_dir {} {what} ({e}); the sender spools there while carbon is down: choose a directory this user can write",
            dir.display()
        ));
    }
    Ok(())
}

/// The collector files of `dir`: `*.yml` and `*.yaml`, sorted by name.
fn collector_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        ConfigError::whole_file(
            dir,
            format!("cannot read the collectors directory: {e} (set --collectors-dir or `collectors_dir:` in the global file)"),
        )
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            ConfigError::whole_file(dir, format!("cannot read the collectors directory: {e}"))
        })?;
        let path = entry.path();
        let is_yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        );
        // Dotfiles are editor droppings (`.#host.yml`, `.host.yml.swp`), not instances.
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if is_yaml && !hidden && !path.is_dir() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn load_collectors(settings: &Settings) -> Result<Vec<LoadedInstance>, Vec<ConfigError>> {
    let files = collector_files(&settings.collectors_dir).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut instances = Vec::new();
    for file in files {
        match load_instance(&file, settings) {
            Ok(i) => instances.push(i),
            Err(e) => errors.push(e),
        }
    }
    let mut seen: HashMap<&str, &LoadedInstance> = HashMap::new();
    for inst in instances.iter().filter(|i| i.enabled()) {
        if let Some(first) = seen.insert(&inst.segment, inst) {
            let (l, c) = yaml::value_position(&inst.text, "path").unwrap_or((1, 1));
            errors.push(ConfigError::new(
                &inst.file,
                l,
                c,
                format!(
                    "metric path \"{}\" is already used by {}; set a different `path:` in one of them",
                    if inst.segment.is_empty() { "(host level)" } else { &inst.segment },
                    first.file.display()
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(instances)
    } else {
        errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        Err(errors)
    }
}

fn load_instance(file: &Path, settings: &Settings) -> Result<LoadedInstance, ConfigError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConfigError::whole_file(file, format!("cannot read: {e}")))?;
    let names = || collectors::ALL_KINDS.join(", ");
    let Some((kind_name, line, column)) = yaml::read_type(file, &text)? else {
        return Err(ConfigError::new(
            file,
            1,
            1,
            format!(
                "missing field \"type\": say which collector this file configures (`type: <name>`, one of: {})",
                names()
            ),
        ));
    };
    if collectors::not_compiled_in(&kind_name) {
        return Err(ConfigError::new(
            file,
            line,
            column,
            format!(
                "this build was compiled without the {kind_name} collector; rebuild with --features {kind_name}"
            ),
        ));
    }
    let Some(kind) = collectors::kind(&kind_name) else {
        let mut msg = format!(
            "unknown collector type \"{kind_name}\" (expected one of: {})",
            names()
        );
        if let Some(best) = conf::closest(&kind_name, collectors::ALL_KINDS.iter().copied()) {
            msg.push_str(&format!("; did you mean \"{best}\"?"));
        }
        return Err(ConfigError::new(file, line, column, msg));
    };
    let instance = (kind.build)(file, &text)?;
    let at = |key: &str| yaml::value_position(&text, key).unwrap_or((1, 1));
    let common = &instance.common;
    let interval = common.interval.unwrap_or(settings.interval);
    if interval < Duration::from_secs(1) {
        let (l, c) = at("interval");
        return Err(ConfigError::new(
            file,
            l,
            c,
            "interval is too short: Graphite timestamps are whole seconds, use at least 1s",
        ));
    }
    let timeout = common.timeout.unwrap_or(interval);
    if timeout.is_zero() || timeout > interval {
        let (l, c) = at("timeout");
        return Err(ConfigError::new(
            file,
            l,
            c,
            format!(
                "timeout {} must be above 0 and at most the interval ({}): runs of one instance never overlap",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
        ));
    }
    let raw_segment = common.path.as_deref().unwrap_or(kind.default_path);
    // An empty segment puts the metrics right under `<prefix>.<host>.` (Diamond's layout).
    let segment = if raw_segment.is_empty() {
        String::new()
    } else {
        paths::sanitize(raw_segment).map_err(|m| {
            let (l, c) = at("path");
            ConfigError::new(file, l, c, format!("path: {m}"))
        })?
    };
    if segment == "sender" || segment.starts_with("sender.") {
        let (l, c) = at("path");
        return Err(ConfigError::new(
            file,
            l,
            c,
            "path \"sender\" is reserved for the agent's own metrics (carbide.collector.sender.*); choose another `path:`",
        ));
    }
    for (k, v) in &common.tags {
        paths::check_tag(k, v).map_err(|m| tag_err(file, &text, k, m))?;
    }
    let mut tags = settings.tags.clone();
    tags.extend(common.tags.clone());
    let tags = paths::render_tags(&tags);
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(LoadedInstance {
        file: file.to_path_buf(),
        stem,
        text,
        segment,
        interval,
        timeout,
        tags,
        instance,
    })
}

/// The system host name (`gethostname`).
fn system_hostname() -> Result<String, String> {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for buf.len() bytes; gethostname NUL-terminates on success (we
    // also stop at the buffer's end).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Err(format!(
            "cannot read the host name: {}; set `hostname_method: fixed` and `hostname:`",
            std::io::Error::last_os_error()
        ));
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    if name.is_empty() {
        return Err(
            "the system host name is empty; set `hostname_method: fixed` and `hostname:`".into(),
        );
    }
    Ok(name)
}

/// `hostname -s`: the system host name up to its first dot.
pub fn short_hostname() -> Result<String, String> {
    let name = system_hostname()?;
    Ok(name.split('.').next().unwrap_or(&name).to_string())
}

/// The canonical name of this host from the resolver, or the short name when it has none.
pub fn fqdn_hostname() -> Result<String, String> {
    let name = system_hostname()?;
    Ok(
        canonical_name(&name)
            .unwrap_or_else(|| name.split('.').next().unwrap_or(&name).to_string()),
    )
}

fn canonical_name(host: &str) -> Option<String> {
    let c_host = std::ffi::CString::new(host).ok()?;
    // SAFETY: zeroed addrinfo is a valid "no hints" value; we set the flags we need.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    hints.ai_family = libc::AF_UNSPEC;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated host, valid hints, res is an out pointer freed below.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    // SAFETY: res is a valid list from getaddrinfo; ai_canonname is NUL-terminated or null.
    let name = unsafe {
        let cn = (*res).ai_canonname;
        let name = if cn.is_null() {
            None
        } else {
            Some(std::ffi::CStr::from_ptr(cn).to_string_lossy().into_owned())
        };
        libc::freeaddrinfo(res);
        name
    };
    name.filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn sources(dir: &Path, global: Option<&str>) -> Sources {
        let config = global.map(|g| {
            let f = dir.join("collector.yml");
            std::fs::write(&f, g).unwrap();
            f
        });
        Sources {
            config,
            collectors_dir: Some(dir.join("collectors.d")),
        }
    }

    #[test]
    fn global_defaults_and_decoding() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("collectors.d")).unwrap();
        let s = sources(tmp.path(), Some("# nothing\n"));
        let loaded = load(&s).unwrap();
        assert_eq!(loaded.settings.interval, Duration::from_secs(10));
        assert!(loaded.settings.base.starts_with("servers."));
        assert_eq!(loaded.settings.jitter, Duration::ZERO);

        let s = sources(
            tmp.path(),
            Some("hostname_method: fixed\nhostname: web01.example.com\npath_prefix: prod.servers\npath_suffix: x y\ninterval: 1m\njitter: 2s\n"),
        );
        let loaded = load(&s).unwrap();
        assert_eq!(loaded.settings.base, "prod.servers.web01.example.com");
        assert_eq!(loaded.settings.suffix.as_deref(), Some("x_y"));
        assert_eq!(loaded.settings.interval, Duration::from_secs(60));
        assert_eq!(loaded.settings.jitter, Duration::from_secs(2));
    }

    #[test]
    fn global_errors_have_positions() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("collectors.d")).unwrap();
        let cases = [
            ("hostname_method: fixed\n", 1, "needs `hostname"),
            ("hostname: a\n", 1, "only used with"),
            (
                "interval: 10s\njitter: 10s\n",
                2,
                "shorter than the interval",
            ),
            ("interval: 500ms\n", 1, "at least 1s"),
            ("path_prefix: a..b\n", 1, "empty component"),
            ("hostname_method: long\n", 1, "unknown value \"long\""),
            ("intervall: 10s\n", 1, "unknown key \"intervall\""),
        ];
        for (text, line, want) in cases {
            let errs = load(&sources(tmp.path(), Some(text))).err().unwrap();
            assert_eq!(errs.len(), 1, "{text}");
            assert_eq!(errs[0].line, line, "{text}: {}", errs[0]);
            assert!(errs[0].message.contains(want), "{text}: {}", errs[0]);
        }
    }

    #[test]
    fn collectors_dir_relative_to_global_file() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("g.yml");
        std::fs::write(&f, "collectors_dir: conf.d\n").unwrap();
        let s = Sources {
            config: Some(f),
            collectors_dir: None,
        };
        let (settings, _) = load_settings(&s).unwrap();
        assert_eq!(settings.collectors_dir, tmp.path().join("conf.d"));
    }

    /// `--config /etc/carbide/collector.yml` without `collectors_dir:` reads
    /// `/etc/carbide/collectors.d`, whatever the working directory (under systemd it is `/`).
    #[test]
    fn collectors_dir_defaults_to_beside_the_global_file() {
        let tmp = tempfile::tempdir().unwrap();
        let etc = tmp.path().join("etc");
        std::fs::create_dir_all(etc.join("collectors.d")).unwrap();
        write(&etc.join("collectors.d"), "host.yml", "type: host\n");
        let f = etc.join("collector.yml");
        std::fs::write(&f, "interval: 10s\n").unwrap();
        let s = Sources {
            config: Some(f),
            collectors_dir: None,
        };
        let loaded = load(&s).unwrap();
        assert_eq!(loaded.settings.collectors_dir, etc.join("collectors.d"));
        assert_eq!(loaded.instances.len(), 1);
        // A relative `--config` keeps its directory; no global file at all: ./collectors.d.
        let s = Sources {
            config: Some(PathBuf::from("conf/collector.yml")),
            collectors_dir: None,
        };
        let dir = match resolve_settings(
            Some(Path::new("conf/collector.yml")),
            "",
            &GlobalConfig::default(),
            &s,
        ) {
            Ok(settings) => settings.collectors_dir,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(dir, Path::new("conf/collectors.d"));
        let dir = match resolve_settings(None, "", &GlobalConfig::default(), &Sources::default()) {
            Ok(settings) => settings.collectors_dir,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(dir, Path::new("collectors.d"));
    }

    #[test]
    fn spool_dir_defaults_and_resolution() {
        let os = |s: &str| Some(std::ffi::OsString::from(s));
        assert_eq!(
            default_spool_dir_for(true, os("/x"), os("/home/u")),
            Some(PathBuf::from("/var/lib/carbide/spool"))
        );
        assert_eq!(
            default_spool_dir_for(false, os("/x/state"), os("/home/u")),
            Some(PathBuf::from("/x/state/carbide/spool"))
        );
        // XDG: a relative XDG_STATE_HOME is invalid and ignored.
        assert_eq!(
            default_spool_dir_for(false, os("rel"), os("/home/u")),
            Some(PathBuf::from("/home/u/.local/state/carbide/spool"))
        );
        assert_eq!(default_spool_dir_for(false, None, None), None);

        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("g.yml");
        std::fs::write(&f, "sender:\n  spool_dir: sp\n").unwrap();
        let s = Sources {
            config: Some(f.clone()),
            collectors_dir: None,
        };
        let (settings, _) = load_settings(&s).unwrap();
        assert_eq!(settings.sender.spool_dir, Some(tmp.path().join("sp")));
        std::fs::write(&f, "sender:\n  spool_dir: /abs/sp\n").unwrap();
        let (settings, _) = load_settings(&s).unwrap();
        assert_eq!(settings.sender.spool_dir, Some(PathBuf::from("/abs/sp")));
        std::fs::write(&f, "interval: 10s\n").unwrap();
        let (settings, _) = load_settings(&s).unwrap();
        assert_eq!(settings.sender.spool_dir, default_spool_dir());
        assert!(settings.sender.spool_dir.is_some());
    }

    #[test]
    fn instances_sorted_and_validated() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("collectors.d");
        std::fs::create_dir(&d).unwrap();
        write(&d, "b.yaml", "type: host\npath: second\ninterval: 1m\n");
        write(&d, "a.yml", "type: host\ntimeout: 2s\n");
        write(&d, "notes.txt", "ignored");
        write(&d, ".#a.yml", "type: broken");
        let loaded = load(&sources(tmp.path(), None)).unwrap();
        let stems: Vec<_> = loaded.instances.iter().map(|i| i.stem.as_str()).collect();
        assert_eq!(stems, ["a", "b"]);
        assert_eq!(
            loaded.instances[0].segment, "",
            "host metrics sit at the host level"
        );
        assert_eq!(loaded.instances[0].timeout, Duration::from_secs(2));
        assert_eq!(loaded.instances[0].interval, Duration::from_secs(10));
        assert_eq!(loaded.instances[1].segment, "second");
        assert_eq!(loaded.instances[1].timeout, Duration::from_secs(60));
    }

    #[test]
    fn instance_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("collectors.d");
        std::fs::create_dir(&d).unwrap();
        let cases = [
            (
                "type: hosst\n",
                (1, 7),
                "unknown collector type \"hosst\" (expected one of: host, haproxy, rabbitmq, mongodb, sql, exec, nginx, redis, memcached, postgres, mysql, process); did you mean \"host\"?",
            ),
            ("interval: 1s\n", (1, 1), "missing field \"type\""),
            (
                "type: host\ninterval: 5s\ntimeout: 6s\n",
                (3, 10),
                "at most the interval",
            ),
            ("type: host\npath: sender\n", (2, 7), "reserved"),
            ("type: host\npath: a..b\n", (2, 7), "empty component"),
            ("type: host\nwhitelist: ['(']\n", (2, 12), "invalid regex"),
            ("type: host\ninterval: soon\n", (2, 11), "interval"),
        ];
        for (text, (line, col), want) in cases {
            write(&d, "x.yml", text);
            let errs = load(&sources(tmp.path(), None)).err().unwrap();
            assert_eq!(errs.len(), 1, "{text}");
            assert!(errs[0].message.contains(want), "{text}: {}", errs[0]);
            assert_eq!(
                (errs[0].line, errs[0].column),
                (line, col),
                "{text}: {}",
                errs[0]
            );
        }
    }

    /// A type carbide has but this build left out names the feature to rebuild with; in the
    /// default build every type is compiled in and the same file loads.
    #[test]
    fn kind_not_compiled_in_names_the_feature() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("collectors.d");
        std::fs::create_dir(&d).unwrap();
        write(&d, "m.yml", "# mongo\ntype: mongodb\n");
        let result = load(&sources(tmp.path(), None));
        if cfg!(feature = "mongodb") {
            assert!(
                collectors::kind("mongodb").is_some() && !collectors::not_compiled_in("mongodb")
            );
        } else {
            let errs = result.err().unwrap();
            assert_eq!(errs.len(), 1);
            assert_eq!(
                errs[0].to_string(),
                format!(
                    "{}:2:7: this build was compiled without the mongodb collector; rebuild with --features mongodb",
                    d.join("m.yml").display()
                )
            );
        }
        assert!(!collectors::not_compiled_in("host"));
        assert!(!collectors::not_compiled_in("nosuchkind"));
    }

    #[test]
    fn duplicate_paths_name_both_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("collectors.d");
        std::fs::create_dir(&d).unwrap();
        write(&d, "a.yml", "type: host\n");
        write(&d, "b.yml", "type: host\npath: \"\"\n");
        write(&d, "c.yml", "type: host\nenabled: false\n");
        let errs = load(&sources(tmp.path(), None)).err().unwrap();
        assert_eq!(errs.len(), 1);
        let text = errs[0].to_string();
        assert!(
            text.contains("b.yml:2:7: metric path \"(host level)\" is already used by"),
            "{text}"
        );
        assert!(text.contains("a.yml"), "{text}");
    }

    #[test]
    fn hostnames_resolve() {
        let short = short_hostname().unwrap();
        assert!(!short.is_empty() && !short.contains('.'));
        let fqdn = fqdn_hostname().unwrap();
        assert!(paths::sanitize(&fqdn).is_ok(), "{fqdn}");
    }
}
