//! Starting and stopping the server: migrations, the pool, background tasks, graceful shutdown.

use crate::app::{AppState, Settings};
use crate::router::router;
use crate::{live, reaper, sweeper, wake};
use anyhow::Context as _;
use lockstep_storage_pg::{connection_pool, run_migrations};
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// What `lockstep-server` needs to run.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub database_url: String,
    pub listen: SocketAddr,
    pub pool_size: u32,
    pub migrate: bool,
    pub settings: Settings,
}

/// Runs the server until SIGINT or SIGTERM, then drains: no new connections, waiting job
/// requests answer 204, in-flight requests finish.
pub async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let state = start(&config).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    run(
        state,
        listener,
        config.database_url.clone(),
        shutdown_signal(),
    )
    .await
}

/// Connects and migrates; fails with a message that names what to fix.
pub async fn start(config: &ServerConfig) -> anyhow::Result<AppState> {
    let url = config.database_url.clone();
    let (pool_size, migrate) = (config.pool_size, config.migrate);
    let pool = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let pool = connection_pool(&url, pool_size)
            .context("cannot connect to PostgreSQL at DATABASE_URL (is it running? `cargo xtask db start` starts a local one)")?;
        if migrate {
            let mut conn = pool.get().context("cannot check out a connection to migrate")?;
            let applied = run_migrations(&mut conn).context("migrations failed")?;
            for version in applied {
                tracing::info!(version, "applied migration");
            }
        }
        Ok(pool)
    })
    .await??;
    Ok(AppState::new(pool, &config.settings))
}

/// Serves on `listener` until `shutdown` resolves, with the wake-up listener and the lease
/// reaper running beside it.
pub async fn run(
    state: AppState,
    listener: TcpListener,
    database_url: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener_task = tokio::spawn(wake::listen(state.clone(), database_url));
    let reaper_task = tokio::spawn(reaper::run(state.clone()));
    let presence_task = tokio::spawn(live::presence::run(state.clone()));
    let sweeper_task = tokio::spawn(sweeper::run(state.clone()));
    let stopping = state.clone();
    axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: draining requests");
            stopping.shut_down();
        })
        .await
        .context("server failed")?;
    state.shut_down();
    let _ = tokio::join!(listener_task, reaper_task, presence_task, sweeper_task);
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
