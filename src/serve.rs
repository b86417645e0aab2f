//! `carbide serve`: the store, its carbon listeners and the HTTP API, from flags and an
//! optional YAML file (flags win).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use graphite::server::{self, Auth, HttpConfig};
use graphite::store::listen::{Server, ServerConfig};
use graphite::store::schema::Schemas;
use graphite::store::{FlushReport, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use conf::{ConfigErrors, Secret};

use crate::config::{self, Listen};

/// Flags shared by `serve` and `up` (each overrides the YAML file's key of the same name).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Settings file (YAML; keys in docs/store.md). Flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the SQLite database [default: data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Carbon plaintext TCP listener, or `off` [default: 127.0.0.1:2003].
    #[arg(long, value_name = "ADDR")]
    pub carbon_tcp: Option<Listen>,
    /// Carbon plaintext UDP listener, or `off` [default: 127.0.0.1:2003].
    #[arg(long, value_name = "ADDR")]
    pub carbon_udp: Option<Listen>,
    /// HTTP API listener [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// carbon storage-schemas.conf.
    #[arg(long, value_name = "FILE")]
    pub schemas: Option<PathBuf>,
    /// carbon storage-aggregation.conf.
    #[arg(long, value_name = "FILE")]
    pub aggregation: Option<PathBuf>,
    /// How often cached points are written to SQLite (`5s`); the kill -9 loss bound.
    #[arg(long, value_name = "DURATION")]
    pub flush_interval: Option<humantime::Duration>,
    /// Basic-auth user of the HTTP API; the password comes from CARBIDE_HTTP_PASSWORD (or the
    /// file). A bearer token may come from CARBIDE_HTTP_TOKEN.
    #[arg(long, value_name = "USER", allow_hyphen_values = true)]
    pub http_user: Option<String>,
    /// Longest run of one HTTP request's work (render, find, tags), then 504 [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub render_timeout: Option<humantime::Duration>,
    /// Freeze the store's clock at this epoch (replaying recorded data; never in production:
    /// nothing expires).
    #[arg(long, value_name = "EPOCH", hide = true, allow_negative_numbers = true)]
    pub frozen_clock: Option<i64>,
}

/// Everything `serve` starts.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub store: ServerConfig,
    pub http: HttpConfig,
}

impl ServeArgs {
    /// Merge the file (if any), the flags and the environment into settings. Every error is a
    /// [`conf::ConfigError`] (`file:line:column` when the file says the value).
    pub fn settings(&self) -> Result<ServeSettings, ConfigErrors> {
        let file = config::Loaded::load(self.config.as_deref())?;
        let f = &file.cfg;
        let d = ServerConfig::default();
        let hd = HttpConfig::default();
        let listen = |flag: Option<Listen>, key: Option<Listen>, default: Option<SocketAddr>| {
            flag.or(key).map_or(default, Listen::addr)
        };
        let l = &f.limits;
        let store = ServerConfig {
            tcp_listen: listen(self.carbon_tcp, f.carbon_tcp, d.tcp_listen),
            udp_listen: listen(self.carbon_udp, f.carbon_udp, d.udp_listen),
            data_dir: self
                .data_dir
                .clone()
                .or(f.data_dir.clone())
                .unwrap_or(d.data_dir),
            schemas: self.schemas.clone().or(f.schemas.clone()),
            aggregation: self.aggregation.clone().or(f.aggregation.clone()),
            flush_interval: self
                .flush_interval
                .map(Into::into)
                .or(f.flush_interval)
                .unwrap_or(d.flush_interval),
            self_metrics_interval: f.self_metrics_interval.unwrap_or(d.self_metrics_interval),
            max_cache_points: f.max_cache_points.unwrap_or(d.max_cache_points),
            max_connections: l.max_carbon_connections.unwrap_or(d.max_connections),
            idle_timeout: l.carbon_idle_timeout.unwrap_or(d.idle_timeout),
        };
        let mut errors = Vec::new();
        if store.flush_interval < Duration::from_millis(100) {
            errors.push(file.error(&["flush_interval"], "flush_interval must be at least 100ms"));
        }
        let env = |k: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .map(Secret::new)
        };
        let user = self.http_user.clone().or(f.auth.user.clone());
        // An empty secret (`${UNSET:-}`) is no secret: never an accepted empty credential.
        let given = |s: &Option<Secret>| s.clone().filter(|s| !s.is_empty());
        let password = env("CARBIDE_HTTP_PASSWORD").or(given(&f.auth.password));
        let basic = match (user, password) {
            (Some(u), Some(p)) => Some((u, p.expose().to_string())),
            (Some(_), None) => {
                errors.push(file.error(&["auth", "user"], "HTTP basic auth: a user is set but no password; set CARBIDE_HTTP_PASSWORD or auth.password"));
                None
            }
            (None, Some(_)) => {
                errors.push(file.error(
                    &["auth", "password"],
                    "HTTP basic auth: a password is set but no user; set --http-user or auth.user",
                ));
                None
            }
            (None, None) => None,
        };
        let bearer = env("CARBIDE_HTTP_TOKEN")
            .or(given(&f.auth.token))
            .map(|t| t.expose().to_string());
        let limits = graphite::server::Limits {
            max_targets: l.max_targets.unwrap_or(hd.limits.max_targets),
            max_points_per_request: l
                .max_points_per_request
                .unwrap_or(hd.limits.max_points_per_request),
            max_name_bytes_per_request: l
                .max_name_bytes_per_request
                .unwrap_or(hd.limits.max_name_bytes_per_request),
            max_regexes_per_request: l
                .max_regexes_per_request
                .unwrap_or(hd.limits.max_regexes_per_request),
            max_body_bytes: l.max_body_bytes.unwrap_or(hd.limits.max_body_bytes),
            max_find_results: l.max_find_results.unwrap_or(hd.limits.max_find_results),
            render_timeout: self
                .render_timeout
                .map(Into::into)
                .or(l.render_timeout)
                .unwrap_or(hd.limits.render_timeout),
            render_queue_timeout: l
                .render_queue_timeout
                .unwrap_or(hd.limits.render_queue_timeout),
            max_concurrent_renders: l
                .max_concurrent_renders
                .unwrap_or(hd.limits.max_concurrent_renders),
            picture: graphite::picture::PictureLimits {
                max_side: l.max_picture_side.unwrap_or(hd.limits.picture.max_side),
                max_pixels: l.max_picture_pixels.unwrap_or(hd.limits.picture.max_pixels),
                max_text_chars: l
                    .max_picture_text_chars
                    .unwrap_or(hd.limits.picture.max_text_chars),
            },
        };
        for (key, zero) in [
            ("render_timeout", limits.render_timeout.is_zero()),
            (
                "render_queue_timeout",
                limits.render_queue_timeout.is_zero(),
            ),
            ("max_concurrent_renders", limits.max_concurrent_renders == 0),
            ("max_http_connections", l.max_http_connections == Some(0)),
            (
                "http_read_timeout",
                l.http_read_timeout == Some(Duration::ZERO),
            ),
            ("max_carbon_connections", store.max_connections == 0),
            ("max_picture_side", limits.picture.max_side == 0),
            ("max_picture_pixels", limits.picture.max_pixels == 0),
        ] {
            if zero {
                errors.push(file.error(
                    &["limits", key],
                    format!("limits.{key} must be more than zero"),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let http = HttpConfig {
            listen: self.http_listen.or(f.http_listen).unwrap_or(hd.listen),
            auth: Auth { basic, bearer },
            limits,
            max_connections: l.max_http_connections.unwrap_or(hd.max_connections),
            read_timeout: l.http_read_timeout.unwrap_or(hd.read_timeout),
        };
        if let Some(t) = self.frozen_clock {
            graphite::store::clock::freeze(t);
            tracing::warn!(epoch = t, "the store's clock is frozen (replay mode)");
        }
        Ok(ServeSettings { store, http })
    }
}

/// A running `serve`: the store with its listeners and the HTTP API.
pub struct Running {
    server: Server,
    http_addr: SocketAddr,
    /// Where the API's work runs; stopped first at shutdown (running renders cancelled).
    pool: server::work::Pool,
    http_stop: watch::Sender<bool>,
    http_task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Open the store, start the carbon listeners and the HTTP API with the console's
    /// metrics pages at `/`.
    pub async fn start(settings: ServeSettings) -> anyhow::Result<Running> {
        let console = console::router(console::Features {
            metrics: true,
            alerts: false,
        });
        Self::start_with(settings, console).await
    }

    /// [`Running::start`] with `extra` routes on the HTTP API's port, behind its auth
    /// (`carbide up`: the console with its alert pages, and the alerter's JSON API).
    pub async fn start_with(
        settings: ServeSettings,
        extra: axum::Router,
    ) -> anyhow::Result<Running> {
        warn_if_open_files_below_caps(&settings);
        let server = Server::start(settings.store.clone()).await?;
        let listener = tokio::net::TcpListener::bind(settings.http.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on http {} (is graphite-web or another carbide running? pick another address with --http-listen)",
                    settings.http.listen
                )
            })?;
        let http_addr = listener.local_addr()?;
        let (router, pool) = server::api_with(server.store().clone(), &settings.http, extra);
        let (http_stop, mut rx) = watch::channel(false);
        let http = settings.http.clone();
        let stats = Arc::new(server::listen::ListenerStats::default());
        tokio::spawn(server::listen::self_metrics(
            server.store().clone(),
            stats.clone(),
            pool.clone(),
            settings.store.self_metrics_interval,
            http_stop.subscribe(),
        ));
        let http_task = tokio::spawn(async move {
            server::listen::serve_counted(
                listener,
                router,
                &http,
                async move {
                    let _ = rx.changed().await;
                },
                stats,
            )
            .await
        });
        let show = |a: Option<SocketAddr>| a.map_or("off".to_string(), |a| a.to_string());
        // One line on stdout so scripts (and tests) can find ports chosen with :0.
        println!(
            "carbide: carbon tcp {} udp {}, http http://{http_addr}, data {}",
            show(server.tcp_addr()),
            show(server.udp_addr()),
            settings.store.data_dir.display()
        );
        Ok(Running {
            server,
            http_addr,
            pool,
            http_stop,
            http_task,
        })
    }

    pub fn store(&self) -> &Arc<Store> {
        self.server.store()
    }

    pub fn carbon_tcp(&self) -> Option<SocketAddr> {
        self.server.tcp_addr()
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Stop the HTTP API (running renders are cancelled and answered 503, connections
    /// closed), then the listeners; flush and close.
    pub async fn shutdown(self) -> anyhow::Result<FlushReport> {
        self.pool.stop();
        let _ = self.http_stop.send(true);
        match self.http_task.await {
            Ok(Err(e)) => tracing::warn!("http server: {e}"),
            Err(e) => tracing::warn!("http server task: {e}"),
            Ok(Ok(())) => {}
        }
        Ok(self.server.shutdown().await?)
    }
}

/// The connection caps should refuse clients before the process runs out of file
/// descriptors (`main` raises the soft limit to the hard one first): say so when they cannot.
fn warn_if_open_files_below_caps(settings: &ServeSettings) {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } != 0 {
        return;
    }
    let carbon = match settings.store.tcp_listen {
        Some(_) => settings.store.max_connections,
        None => 0,
    };
    // Connections plus the database, listeners, logs and the runtime's own descriptors.
    let need = (settings.http.max_connections + carbon + 64) as u64;
    if l.rlim_cur != libc::RLIM_INFINITY && need > l.rlim_cur {
        tracing::warn!(
            open_files = l.rlim_cur,
            needed = need,
            "the open-files limit is below max_http_connections + max_carbon_connections: \
             raise it (LimitNOFILE=, ulimit -Hn) or lower the caps, or clients will meet \
             accept errors instead of the caps"
        );
    }
}

/// SIGINT or SIGTERM. The handlers are installed when this is called (before anything
/// starts), so a signal arriving during start-up is not lost.
pub fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

/// `carbide check`: what `serve` with these flags would load — the settings file, the flags
/// and environment, the schema files — checked without opening the store or a listener (the
/// systemd unit's `ExecStartPre`). The summary to print, or the errors (exit 2).
pub fn check(args: &ServeArgs) -> anyhow::Result<String> {
    let s = args.settings()?;
    let schemas = s.store.schemas.as_deref();
    let aggregation = s.store.aggregation.as_deref();
    Schemas::load(schemas, aggregation).map_err(|e| crate::StartupError(e.to_string()))?;
    let show = |a: Option<SocketAddr>| a.map_or("off".to_string(), |a| a.to_string());
    let file = |p: Option<&std::path::Path>, default: &str| {
        p.map_or(default.to_string(), |p| p.display().to_string())
    };
    Ok(format!(
        "settings: {}\n  data {}, carbon tcp {} udp {}, http {}\n  schemas: {}\n  aggregation: {}\nconfiguration OK\n",
        file(args.config.as_deref(), "defaults (no --config)"),
        s.store.data_dir.display(),
        show(s.store.tcp_listen),
        show(s.store.udp_listen),
        s.http.listen,
        file(schemas, "carbide's defaults"),
        file(aggregation, "whisper's default (average, xFilesFactor 0.5)"),
    ))
}

/// `carbide serve` until SIGTERM or SIGINT. SIGHUP rereads the schema files now (they are
/// also reread every 60 s); other settings need a restart.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let settings = args.settings()?;
    let (schemas, aggregation) = (
        settings.store.schemas.clone(),
        settings.store.aggregation.clone(),
    );
    let stop = shutdown_signal()?;
    let mut hup = signal(SignalKind::hangup())?;
    let running = Running::start(settings).await?;
    tokio::pin!(stop);
    let sig = loop {
        tokio::select! {
            sig = &mut stop => break sig,
            _ = hup.recv() => match Schemas::load(schemas.as_deref(), aggregation.as_deref()) {
                Ok(s) => {
                    running.store().set_schemas(s);
                    tracing::info!("SIGHUP: schema files reread; new series get their rules");
                }
                Err(e) => tracing::warn!("SIGHUP: schema files not reloaded, keeping the rules in use: {e}"),
            },
        }
    };
    tracing::info!("{sig}: stopping");
    let r = running.shutdown().await?;
    tracing::info!(points = r.points, "store flushed and closed");
    Ok(())
}
