//! The assembled daemon state shared by the HTTP handlers and the CLI commands: store, keys,
//! verifier and issuer, built once from the configuration.

use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;

use crate::audit::Audit;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::crypto::{load_master_key, MasterKeySource, Pepper, Sealer};
use crate::issue::client_auth::AssertionRules;
use crate::issue::TokenIssuer;
use crate::legacy::Adapters;
use crate::secret::SecretBytes;
use crate::signing::Keyring;
use crate::store::{redact_url, Store};
use crate::tenancy::TenantDirectory;
use crate::verify::{ApiKeyCache, RevocationList, Verifier, VerifierSettings};

const PEPPER_SETTING: &str = "api_key_pepper";

/// The daemon failed to start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database at {url}: {detail}")]
    Database { url: String, detail: String },
    #[error(transparent)]
    MasterKey(#[from] crate::crypto::MasterKeyError),
    #[error("{0}")]
    Secrets(String),
    #[error(transparent)]
    Keyring(#[from] crate::signing::KeyringError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("invalid adapter configuration: {0}")]
    Adapter(#[from] crate::legacy::AdapterConfigError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot build the HTTP client for legacy sources: {0}")]
    HttpClient(String),
}

/// The HTTP client for legacy sources: no redirects (a key URL must not send the daemon to
/// another host), short timeouts, HTTPS through rustls.
fn legacy_http_client() -> Result<reqwest::Client, StartupError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("authbridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| StartupError::HttpClient(e.to_string()))
}

pub struct App {
    pub config: Config,
    pub store: Store,
    pub keyring: Arc<Keyring>,
    pub verifier: Verifier,
    pub issuer: TokenIssuer,
    pub directory: Arc<TenantDirectory>,
    pub revocations: Arc<RevocationList>,
    pub pepper: Pepper,
    pub clock: SharedClock,
    pub assertion_rules: AssertionRules,
    pub audit: Arc<Audit>,
    pub phases: Arc<crate::legacy::phases::PhaseBook>,
    /// Failed credential checks per client address.
    pub failure_limiter: crate::http::rate_limit::FailureLimiter,
    /// Native tokens that forward-auth translated from legacy credentials.
    pub translations: crate::http::forward_auth::TranslationCache,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("issuer", &self.issuer.issuer())
            .finish_non_exhaustive()
    }
}

impl App {
    /// Connects to the store, applies migrations and loads keys and caches.
    pub async fn open(config: Config, clock: SharedClock) -> Result<Arc<Self>, StartupError> {
        let url = config.database_url();
        let store = Store::connect(
            &url,
            config.database.max_connections,
            Duration::from_secs(config.database.connect_timeout_seconds),
        )
        .await
        .map_err(|e| StartupError::Database {
            url: redact_url(&url),
            detail: e.to_string(),
        })?;
        store.migrate().await?;

        let (master_key, source) = load_master_key(&config)?;
        if let MasterKeySource::GeneratedDevelopmentKey(path) = &source {
            tracing::warn!(
                path = %path.display(),
                "using a development master key stored next to the database; set security.master_key \
                 or AUTHBRIDGE_SECURITY__MASTER_KEY in production"
            );
        }
        let sealer = Sealer::new(&master_key);
        let pepper = load_pepper(&store, &sealer).await?;

        let now = clock.now();
        let keyring = Arc::new(
            Keyring::load_or_create(store.clone(), sealer, config.signing.algorithm, now).await?,
        );
        let directory = Arc::new(TenantDirectory::load(&store).await?);
        let revocations = Arc::new(RevocationList::default());
        revocations.reload(&store, now).await?;

        let issuer_url = config.issuer();
        let settings = VerifierSettings {
            issuer: issuer_url.clone(),
            api_key_prefix: config.api_keys.prefix.clone(),
            leeway_seconds: config.tokens.leeway_seconds,
            max_credential_bytes: config.tokens.max_credential_bytes,
        };
        let http = legacy_http_client()?;
        let adapters = Arc::new(Adapters::build(
            &config.adapters.0,
            &issuer_url,
            &config.api_keys.prefix,
            &http,
        )?);
        let phases = Arc::new(crate::legacy::phases::PhaseBook::load(&store, now).await?);
        let cache = ApiKeyCache::new(
            config.api_keys.cache_capacity,
            Duration::from_secs(config.api_keys.cache_ttl_seconds.max(1)),
        );
        let audit = Arc::new(Audit::start(store.clone(), &config.audit, clock.clone()));
        let verifier = Verifier::new(
            settings,
            keyring.clone(),
            store.clone(),
            pepper.clone(),
            directory.clone(),
            revocations.clone(),
            cache,
            adapters,
            phases.clone(),
            Arc::new(crate::metrics::Metrics::new()),
            audit.clone(),
            clock.clone(),
        );
        let issuer = TokenIssuer::new(
            issuer_url.clone(),
            config.tokens.lifetime_seconds,
            config.tokens.default_audience.clone(),
            keyring.clone(),
            directory.clone(),
            clock.clone(),
        );
        let assertion_rules = AssertionRules {
            audiences: vec![format!("{issuer_url}/oauth/token"), issuer_url],
            max_lifetime_seconds: config.tokens.max_assertion_lifetime_seconds,
            leeway_seconds: config.tokens.leeway_seconds,
        };
        let failure_limiter = crate::http::rate_limit::FailureLimiter::new(
            config.rate_limit.failures_per_window,
            config.rate_limit.window_seconds,
            config.rate_limit.trusted_proxy_networks()?,
            clock.clone(),
        );
        Ok(Arc::new(Self {
            config,
            store,
            keyring,
            verifier,
            issuer,
            directory,
            revocations,
            pepper,
            clock,
            assertion_rules,
            translations: crate::http::forward_auth::translation_cache(),
            phases,
            failure_limiter,
            audit,
        }))
    }

    /// Re-reads state that another instance may have changed: tenants, revocations and keys.
    pub async fn resync(&self) -> Result<(), StartupError> {
        let now = self.clock.now();
        self.directory.reload(&self.store).await?;
        self.revocations.reload(&self.store, now).await?;
        self.keyring.reload().await?;
        self.phases.reload(&self.store, now).await?;
        self.store.prune_revoked_tokens(now).await?;
        Ok(())
    }
}

/// Loads the pepper, creating it on first start. It is stored sealed, so a copy of the
/// database alone cannot be used to test guessed keys.
async fn load_pepper(store: &Store, sealer: &Sealer) -> Result<Pepper, StartupError> {
    const CONTEXT: &[u8] = b"authbridge pepper";
    let mut fresh = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut fresh);
    let sealed = sealer.seal(&fresh, CONTEXT);
    let stored = store.setting_or_insert(PEPPER_SETTING, sealed).await?;
    let pepper = sealer.open(&stored, CONTEXT).map_err(|e| {
        StartupError::Secrets(format!(
            "the stored pepper does not decrypt ({e}): the master key differs from the one this database was created with"
        ))
    })?;
    Ok(Pepper::new(SecretBytes::new(pepper.expose().to_vec())))
}
