//! The secrets the lab holds (API keys, the database password, object-store keys, the admin
//! token) and the scrubbing of untrusted text: whatever a compiler or a candidate printed passes
//! through [`Secrets::scrub`] before it reaches a prompt, the store, a log or an artifact. The
//! sandbox keeps every secret away from candidates; scrubbing is what would still keep one out
//! of the lab's records if a value ever slipped through.

/// Variables that hold secrets whatever the configuration says.
pub const SECRET_VARIABLES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "CODECLAB_ADMIN_TOKEN",
];

/// What stands in for a secret in scrubbed text.
pub const SCRUBBED: &str = "[secret]";

/// Shorter values are not scrubbed: they would blank ordinary text (and are no real secrets).
const MIN_SECRET_BYTES: usize = 8;

/// The values to scrub.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    values: Vec<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} values)", self.values.len())
    }
}

impl Secrets {
    /// The values of [`SECRET_VARIABLES`] and of `variables` in this process's environment,
    /// and the passwords of `urls` (a `postgres://user:password@host/db` database URL).
    pub fn from_environment<'a>(
        variables: impl IntoIterator<Item = &'a str>,
        urls: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut secrets = Secrets::default();
        for variable in SECRET_VARIABLES.iter().copied().chain(variables) {
            if let Some(value) = std::env::var_os(variable) {
                secrets.add(value.to_string_lossy().trim());
            }
        }
        for url in urls {
            if let Ok(parsed) = url::Url::parse(url)
                && let Some(password) = parsed.password()
            {
                secrets.add(password);
                // The URL's own spelling may percent-encode it.
                if let Ok(decoded) = percent_encoding::percent_decode_str(password).decode_utf8() {
                    secrets.add(&decoded);
                }
            }
        }
        secrets
    }

    /// Adds one secret value.
    pub fn add(&mut self, value: &str) {
        if value.len() >= MIN_SECRET_BYTES && !self.values.iter().any(|known| known == value) {
            self.values.push(value.to_owned());
            // Longest first, so that a secret containing another is scrubbed whole.
            self.values
                .sort_by_key(|known| std::cmp::Reverse(known.len()));
        }
    }

    /// Adds every secret of `other`.
    pub fn extend(&mut self, other: &Secrets) {
        for value in &other.values {
            self.add(value);
        }
    }

    /// `text` with every secret value replaced by [`SCRUBBED`].
    pub fn scrub(&self, text: &str) -> String {
        self.values
            .iter()
            .fold(text.to_owned(), |text, value| text.replace(value, SCRUBBED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_scrubbed_wherever_it_stands() {
        let mut secrets = Secrets::default();
        secrets.add("sk-canary-0123456789");
        secrets.add("hunter2-password");
        let text = "error: key sk-canary-0123456789 refused; dsn ...:hunter2-password@db, again sk-canary-0123456789";
        let scrubbed = secrets.scrub(text);
        assert!(!scrubbed.contains("sk-canary"), "{scrubbed}");
        assert!(!scrubbed.contains("hunter2"), "{scrubbed}");
        assert_eq!(scrubbed.matches(SCRUBBED).count(), 3);
    }

    #[test]
    fn short_values_are_not_secrets() {
        let mut secrets = Secrets::default();
        secrets.add("1");
        secrets.add("");
        assert_eq!(secrets.scrub("1 + 1"), "1 + 1");
    }

    #[test]
    fn a_database_password_is_taken_from_its_url_encoded_or_not() {
        let secrets = Secrets::from_environment(
            [],
            [
                "postgres://lab:p%40ss-word-99@127.0.0.1:5432/lab",
                "sqlite:lab.db",
            ],
        );
        assert_eq!(
            secrets.scrub("p@ss-word-99 and p%40ss-word-99"),
            "[secret] and [secret]"
        );
    }

    #[test]
    fn the_debug_form_shows_no_value() {
        let mut secrets = Secrets::default();
        secrets.add("sk-canary-0123456789");
        assert!(!format!("{secrets:?}").contains("canary"));
    }
}
