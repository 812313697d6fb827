//! Text a caller sends: free text (a description, a comment, a reason, an organisation
//! detail) may hold line breaks and tabs but no other control character; a key or a name
//! (an account, an organisation field's name, a file name) none at all. NUL and the other
//! control characters break logs, certificates and the tools that read them.

use crate::error::{DomainError, Reason};

/// Ok when `value`, the caller's `field`, holds no control character but line breaks and
/// tabs.
pub fn free_text(field: &str, value: &str) -> Result<(), DomainError> {
    check(field, value, |c| c == '\n' || c == '\r' || c == '\t')
}

/// Ok when `value`, the caller's `field`, holds no control character at all.
pub fn key_text(field: &str, value: &str) -> Result<(), DomainError> {
    check(field, value, |_| false)
}

fn check(field: &str, value: &str, allowed: impl Fn(char) -> bool) -> Result<(), DomainError> {
    match value.chars().find(|c| c.is_control() && !allowed(*c)) {
        None => Ok(()),
        Some(c) => Err(DomainError::invalid(
            Reason::InvalidArgument,
            format!(
                "{field} holds the control character U+{:04X}; send it as plain text",
                u32::from(c)
            ),
        )),
    }
}

/// An account as certflow compares and records it: trimmed, lower case. `Acme` and `acme`
/// are one account, wherever the name comes from (a token, a request, the log).
pub fn account_key(account: &str) -> String {
    account.trim().to_lowercase()
}

/// Whether two account names name the same account.
pub fn same_account(a: &str, b: &str) -> bool {
    account_key(a) == account_key(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gen5_control_characters_are_refused_and_line_breaks_only_in_free_text() {
        for bad in ["a\0b", "\u{7}", "x\u{1b}[31m", "\u{85}next line", "\u{9b}"] {
            let err = free_text("description", bad).expect_err(bad);
            assert_eq!(err.reason(), Reason::InvalidArgument);
            assert!(err.to_string().starts_with("description holds"), "{err}");
            assert!(key_text("account", bad).is_err(), "{bad:?}");
        }
        free_text("description", "line one\nline two\ttabbed").expect("plain text");
        assert!(key_text("account", "a\nb").is_err());
        key_text("account", "Acme Corp — 株式会社").expect("any printable text");
    }

    #[test]
    fn gen3_accounts_compare_in_one_form() {
        assert!(same_account("Acme", "acme"));
        assert!(same_account(" ACME ", "acme"));
        assert!(!same_account("acme", "acme2"));
        assert_eq!(account_key(" Globex "), "globex");
    }
}
