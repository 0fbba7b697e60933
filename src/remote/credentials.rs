//! Credentials over HTTP(S), as git gets them: a `user:password@` in the
//! URL, or git's credential helpers (and its prompt) when the server asks,
//! told afterwards whether what they gave was accepted.

use gix::bstr::ByteSlice;
use gix::credentials::helper::{Action, Cascade, NextAction};
use gix::sec::identity::Account;

use super::error_chain;

/// The credentials gix fetches with: git's helpers for `url`, told the
/// URL's user (which gix leaves out of the URL it asks them about), so
/// that a fetch authenticates as our push does.
pub fn fetch_credentials(
    repo: &gix::Repository,
    url: &str,
) -> Result<
    impl FnMut(Action) -> Result<Option<gix::credentials::protocol::Outcome>, gix::Error> + 'static,
    String,
> {
    let parsed = gix::url::parse(gix::bstr::BStr::new(url)).map_err(|e| error_chain(&e))?;
    let user = parsed.user().map(ToOwned::to_owned);
    let (mut cascade, _, prompt) = repo
        .config_snapshot()
        .credential_helpers(parsed)
        .map_err(|e| format!("the credential helper configuration: {}", error_chain(&e)))?;
    Ok(move |mut action: Action| {
        // The helpers read the user from the context's URL.
        if let Some(context) = action.context_mut()
            && let Some(mut asked) = context
                .url
                .as_ref()
                .and_then(|u| gix::url::parse(u.as_bstr()).ok())
            && asked.user().is_none()
            && user.is_some()
        {
            asked.set_user(user.clone());
            context.url = Some(asked.to_bstring());
        }
        cascade.invoke(action, prompt.clone())
    })
}

/// git's credential helpers for one URL: asked once, then told whether
/// what they gave was accepted, so that they store or forget it.
pub(super) struct Helpers {
    cascade: Cascade,
    prompt: gix::prompt::Options,
    action: Option<Action>,
    next: Option<NextAction>,
}

impl Helpers {
    pub fn for_url(
        repo: &gix::Repository,
        base: &reqwest::Url,
        user: &str,
    ) -> Result<Helpers, String> {
        let mut url = base.clone();
        let _ = url.set_username(user);
        let parsed =
            gix::url::parse(gix::bstr::BStr::new(url.as_str())).map_err(|e| e.to_string())?;
        let (cascade, action, prompt) = repo
            .config_snapshot()
            .credential_helpers(parsed)
            .map_err(|e| format!("the credential helper configuration: {}", error_chain(&e)))?;
        Ok(Helpers {
            cascade,
            prompt,
            action: Some(action),
            next: None,
        })
    }

    pub fn fill(&mut self) -> Result<Account, String> {
        let refused = "authentication required (HTTP 401), and no credential helper or prompt gave credentials";
        let action = self.action.take().ok_or(refused)?;
        let outcome = self
            .cascade
            .invoke(action, self.prompt.clone())
            .map_err(|e| format!("{refused}: {}", error_chain(&e)))?
            .ok_or(refused)?;
        self.next = Some(outcome.next);
        Ok(outcome.identity)
    }

    /// Tells the helpers to store accepted credentials and forget refused
    /// ones, as `git credential approve/reject` would.
    pub fn conclude(mut self, accepted: bool) {
        if let Some(next) = self.next.take() {
            let action = if accepted { next.store() } else { next.erase() };
            // A helper that cannot store is no reason to fail the push.
            let _ = self.cascade.invoke(action, self.prompt.clone());
        }
    }
}

/// A part of a URL (user, password) with its `%XX` escapes decoded.
pub(super) fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_password_are_percent_decoded_as_url_parts() {
        assert_eq!(percent_decoded("p%40ss%3Aword"), "p@ss:word");
        assert_eq!(percent_decoded("100%"), "100%");
        assert_eq!(percent_decoded("%zz"), "%zz");
    }
}
