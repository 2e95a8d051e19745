//! Configuration read once from the environment, as the table in docs/api.md
//! ("Configuration") says.

use std::time::Duration;

/// Everything the service reads from the environment. Built once per process so a
/// request never re-parses variables, and tests can build one without touching globals.
#[derive(Clone)]
pub struct Config {
    /// Cleaned database URL (quotes, whitespace and a trailing `;` removed).
    pub postgres: Option<String>,
    /// HMAC key for post_stats, byte for byte (a comma is part of it); `None` when unset
    /// or empty.
    pub secret: Option<String>,
    /// More keys for post_stats (`EXTRA_SECRETS`, comma-separated; one per tester, so one
    /// can be revoked alone): keys 1, 2, … in the log, `SECRET` being key 0. Entries are
    /// trimmed; empty ones are no keys. With neither these nor `SECRET`, every post is
    /// refused.
    pub extra_secrets: Vec<String>,
    /// How old a posted body's `timestamp` may be (`POST_MAX_AGE`, seconds); `None` (unset,
    /// the default): any age, as the original. See `crate::freshness`.
    pub post_max_age: Option<Duration>,
    pub start_time_window: Duration,
    pub db_timeout: Duration,
    pub log_level: String,
    pub regions_cache_timeout: Duration,
    pub pipelines_cache_timeout: Duration,
    pub catalyst_region_url: Option<String>,
    /// Whether a process that migrated advances V4's backfill in the background
    /// (`BACKFILL=background`, the default) or leaves it to `leaderboard migrate up`
    /// (`BACKFILL=off`). Reads are exact either way.
    pub backfill_in_background: bool,
}

impl std::fmt::Debug for Config {
    // Hand-written so that neither the secret nor the database password can reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field(
                "postgres",
                &self.postgres.as_deref().map(crate::db::redact_url),
            )
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .field("extra_secrets", &self.extra_secrets.len())
            .field("post_max_age", &self.post_max_age)
            .field("start_time_window", &self.start_time_window)
            .field("db_timeout", &self.db_timeout)
            .field("log_level", &self.log_level)
            .field("regions_cache_timeout", &self.regions_cache_timeout)
            .field("pipelines_cache_timeout", &self.pipelines_cache_timeout)
            .field("backfill_in_background", &self.backfill_in_background)
            .field(
                "catalyst_region_url",
                &self
                    .catalyst_region_url
                    .as_deref()
                    .map(crate::regions::catalyst::host_of),
            )
            .finish()
    }
}

/// A variable that was set but could not be used; logged once the logger exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub variable: &'static str,
    pub message: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> (Config, Vec<ConfigWarning>) {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`, so tests can supply their own environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> (Config, Vec<ConfigWarning>) {
        let mut warnings = Vec::new();
        let text = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut number = |name: &'static str, default: f64| -> f64 {
            match text(name) {
                None => default,
                Some(raw) => match raw.parse::<f64>() {
                    Ok(v) if v.is_finite() && v >= 0.0 => v,
                    _ => {
                        warnings.push(ConfigWarning {
                            variable: name,
                            message: format!("{name}={raw:?} is not a non-negative number; using the default {default}"),
                        });
                        default
                    }
                },
            }
        };
        let start_hours = number("START_TIME_WINDOW", 24.0);
        let db_timeout = number("DB_TIMEOUT", 20.0);
        let regions = number("REGIONS_CACHE_TIMEOUT", 60.0);
        let pipelines = number("PIPELINES_CACHE_TIMEOUT", 60.0);
        let post_max_age = match text("POST_MAX_AGE") {
            None => None,
            Some(raw) => match raw.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => Some(secs(v)),
                _ => {
                    warnings.push(ConfigWarning {
                        variable: "POST_MAX_AGE",
                        message: format!(
                            "POST_MAX_AGE={raw:?} is not a positive number of seconds; posts are accepted whatever their timestamp"
                        ),
                    });
                    None
                }
            },
        };
        let backfill_in_background = match text("BACKFILL").as_deref() {
            None | Some("background") => true,
            Some("off") => false,
            Some(other) => {
                warnings.push(ConfigWarning {
                    variable: "BACKFILL",
                    message: format!(
                        "BACKFILL={other:?} is neither \"background\" nor \"off\"; using background"
                    ),
                });
                true
            }
        };
        let config = Config {
            postgres: lookup("POSTGRES")
                .map(|v| clean_url(&v))
                .filter(|v| !v.is_empty()),
            secret: lookup("SECRET").filter(|v| !v.is_empty()),
            extra_secrets: lookup("EXTRA_SECRETS")
                .map(|list| extra_secrets(&list))
                .unwrap_or_default(),
            post_max_age,
            start_time_window: secs(start_hours * 3600.0),
            db_timeout: secs(db_timeout),
            log_level: text("LOG_LEVEL").unwrap_or_else(|| "info".to_string()),
            regions_cache_timeout: secs(regions),
            pipelines_cache_timeout: secs(pipelines),
            catalyst_region_url: text("CATALYST_REGION_URL"),
            backfill_in_background,
        };
        (config, warnings)
    }

    /// A configuration for a given database, everything else at its default.
    pub fn for_database(url: &str) -> Config {
        let (mut config, _) = Self::from_lookup(|_| None);
        config.postgres = Some(clean_url(url));
        config
    }
}

/// The keys of `EXTRA_SECRETS`: comma-separated, each trimmed, empty entries dropped.
fn extra_secrets(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(str::to_string)
        .collect()
}

impl Config {
    /// Every key a post may be signed with, by position: `SECRET` is 0 (`None` when unset),
    /// `EXTRA_SECRETS` 1, 2, …
    pub fn post_keys(&self) -> Vec<Option<&str>> {
        std::iter::once(self.secret.as_deref())
            .chain(self.extra_secrets.iter().map(|k| Some(k.as_str())))
            .collect()
    }

    /// The identifier of each key of [`Config::post_keys`], by the same position.
    pub fn post_key_ids(&self) -> Vec<Option<String>> {
        self.post_keys()
            .into_iter()
            .map(|key| key.map(crate::auth::key_id))
            .collect()
    }
}

fn secs(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::MAX)
}

/// Strips what copy-pasting a URL into a dashboard tends to add: surrounding whitespace,
/// quotes and a trailing `;` (the original README's example ends with one).
pub fn clean_url(raw: &str) -> String {
    let mut s = raw.trim();
    loop {
        let before = s;
        s = s.trim().trim_end_matches(';').trim();
        for q in ['"', '\''] {
            if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
                s = &s[1..s.len() - 1];
            }
        }
        if s == before {
            return s.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> (Config, Vec<ConfigWarning>) {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_spec() {
        let (c, w) = load(&[]);
        assert!(w.is_empty());
        assert_eq!(c.postgres, None);
        assert_eq!(c.secret, None);
        assert_eq!(c.start_time_window, Duration::from_secs(24 * 3600));
        assert_eq!(c.db_timeout, Duration::from_secs(20));
        assert_eq!(c.log_level, "info");
        assert_eq!(c.regions_cache_timeout, Duration::from_secs(60));
        assert_eq!(c.pipelines_cache_timeout, Duration::from_secs(60));
        assert_eq!(c.catalyst_region_url, None);
        assert_eq!(c.post_max_age, None);
    }

    #[test]
    fn post_max_age_is_positive_seconds_or_off() {
        let (c, w) = load(&[("POST_MAX_AGE", " 3600 ")]);
        assert!(w.is_empty());
        assert_eq!(c.post_max_age, Some(Duration::from_secs(3600)));
        assert_eq!(load(&[("POST_MAX_AGE", "")]).0.post_max_age, None);
        for bad in ["0", "-5", "an hour", "NaN", "inf"] {
            let (c, w) = load(&[("POST_MAX_AGE", bad)]);
            assert_eq!(c.post_max_age, None, "{bad}");
            assert_eq!(w.len(), 1, "{bad}");
            assert_eq!(w[0].variable, "POST_MAX_AGE");
        }
    }

    #[test]
    fn values_are_read() {
        let (c, w) = load(&[
            ("START_TIME_WINDOW", "2"),
            ("DB_TIMEOUT", "1.5"),
            ("REGIONS_CACHE_TIMEOUT", "0"),
            ("PIPELINES_CACHE_TIMEOUT", "7"),
            ("SECRET", "s3cret"),
            ("LOG_LEVEL", "debug"),
            ("CATALYST_REGION_URL", "https://example.invalid/c.json"),
        ]);
        assert!(w.is_empty());
        assert_eq!(c.start_time_window, Duration::from_secs(7200));
        assert_eq!(c.db_timeout, Duration::from_millis(1500));
        assert_eq!(c.regions_cache_timeout, Duration::ZERO);
        assert_eq!(c.pipelines_cache_timeout, Duration::from_secs(7));
        assert_eq!(c.secret.as_deref(), Some("s3cret"));
        assert_eq!(c.log_level, "debug");
        assert!(c.catalyst_region_url.is_some());
    }

    #[test]
    fn bad_numbers_fall_back_to_defaults_with_a_warning() {
        let (c, w) = load(&[
            ("START_TIME_WINDOW", "a day"),
            ("DB_TIMEOUT", "-3"),
            ("REGIONS_CACHE_TIMEOUT", "NaN"),
            ("PIPELINES_CACHE_TIMEOUT", "1e999"),
        ]);
        assert_eq!(c.start_time_window, Duration::from_secs(24 * 3600));
        assert_eq!(c.db_timeout, Duration::from_secs(20));
        assert_eq!(c.regions_cache_timeout, Duration::from_secs(60));
        assert_eq!(c.pipelines_cache_timeout, Duration::from_secs(60));
        let vars: Vec<_> = w.iter().map(|w| w.variable).collect();
        assert_eq!(
            vars,
            [
                "START_TIME_WINDOW",
                "DB_TIMEOUT",
                "REGIONS_CACHE_TIMEOUT",
                "PIPELINES_CACHE_TIMEOUT"
            ]
        );
        assert!(w[0].message.contains("a day"));
    }

    #[test]
    fn backfill_is_background_unless_off_and_anything_else_warns() {
        assert!(load(&[]).0.backfill_in_background);
        assert!(load(&[("BACKFILL", "background")]).0.backfill_in_background);
        let (c, w) = load(&[("BACKFILL", " off ")]);
        assert!(!c.backfill_in_background && w.is_empty());
        let (c, w) = load(&[("BACKFILL", "sometimes")]);
        assert!(c.backfill_in_background);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].variable, "BACKFILL");
    }

    #[test]
    fn secret_is_one_key_byte_for_byte_and_extra_secrets_a_list() {
        let (c, _) = load(&[("SECRET", " a,b "), ("EXTRA_SECRETS", "k1, k2 ,,k3,")]);
        assert_eq!(c.secret.as_deref(), Some(" a,b "));
        assert_eq!(c.extra_secrets, ["k1", "k2", "k3"]);
        assert_eq!(
            c.post_keys(),
            [Some(" a,b "), Some("k1"), Some("k2"), Some("k3")]
        );
        for only_empty in [",,", "", " , ,"] {
            let (c, _) = load(&[("EXTRA_SECRETS", only_empty)]);
            assert!(c.extra_secrets.is_empty(), "{only_empty:?}");
            assert_eq!(c.post_keys(), [None]);
        }
        let shown = format!("{:?}", load(&[("SECRET", "s3"), ("EXTRA_SECRETS", "k9")]).0);
        assert!(!shown.contains("s3") && !shown.contains("k9"), "{shown}");
    }

    #[test]
    fn empty_secret_is_no_secret() {
        let (c, _) = load(&[("SECRET", "")]);
        assert_eq!(c.secret, None);
    }

    #[test]
    fn postgres_url_tolerates_quotes_whitespace_and_semicolon() {
        let want = "postgres://u:p@h:5432/db?sslmode=disable";
        for raw in [
            want,
            "  postgres://u:p@h:5432/db?sslmode=disable  ",
            "postgres://u:p@h:5432/db?sslmode=disable;",
            "\"postgres://u:p@h:5432/db?sslmode=disable\"",
            "'postgres://u:p@h:5432/db?sslmode=disable;' ",
            " \"postgres://u:p@h:5432/db?sslmode=disable;\";\n",
        ] {
            let (c, _) = load(&[("POSTGRES", raw)]);
            assert_eq!(c.postgres.as_deref(), Some(want), "from {raw:?}");
        }
        let (c, _) = load(&[("POSTGRES", "  ;")]);
        assert_eq!(c.postgres, None);
    }
}
