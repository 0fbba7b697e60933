//! Smart HTTP(S), as git's http-protocol describes it: the advertisement
//! comes from `GET <repo>/info/refs?service=<service>`, and the request
//! (commands and pack) goes in one `POST <repo>/<service>` whose reply is
//! the report. TLS is rustls. Credentials come from the URL or, when the
//! server asks for them, from git's credential helpers (and its prompt), as
//! git would get them; no message ever carries a password.

use std::io::{Cursor, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gix::sec::identity::Account;
use reqwest::StatusCode;
use reqwest::blocking::{Client, ClientBuilder, RequestBuilder, Response};
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use super::credentials::{Helpers, percent_decoded};
use super::error_chain;
use super::protocol::{ProtocolError, parse_service_announcement};
use super::transport::TransportError;

const USER_AGENT: &str = concat!("git/grite-", env!("CARGO_PKG_VERSION"));

/// How far to trust the server's certificate: git's `http.sslCAInfo` and
/// `http.sslVerify`, or their `GIT_SSL_CAINFO` and `GIT_SSL_NO_VERIFY`
/// environment overrides.
#[derive(Debug, Clone)]
struct Tls {
    ca_info: Option<PathBuf>,
    verify: bool,
}

impl Tls {
    fn from_config(repo: &gix::Repository) -> Result<Tls, String> {
        let config = repo.config_snapshot();
        let ca_info = match std::env::var_os("GIT_SSL_CAINFO") {
            Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
            _ => config
                .trusted_path("http.sslCAInfo")
                .map_err(|e| format!("http.sslCAInfo: {}", describe(&e)))?,
        };
        let verify = std::env::var_os("GIT_SSL_NO_VERIFY").is_none()
            && config.boolean("http.sslVerify").unwrap_or(true);
        Ok(Tls { ca_info, verify })
    }

    /// Applies these settings to a client: the one we push with, and the
    /// one gix fetches with.
    fn configure(&self, mut builder: ClientBuilder) -> Result<ClientBuilder, String> {
        if let Some(path) = &self.ca_info {
            let pem = std::fs::read(path)
                .map_err(|e| format!("reading the CA bundle {}: {e}", path.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("the CA bundle {}: {}", path.display(), describe(&e)))?;
            if certificates.is_empty() {
                return Err(format!(
                    "the CA bundle {} holds no PEM certificate",
                    path.display()
                ));
            }
            // As with git and curl, the configured bundle replaces the
            // system's roots rather than adding to them.
            builder = builder.tls_certs_only(certificates);
        }
        if !self.verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        Ok(builder)
    }
}

/// Transport options that make gix fetch over HTTP(S) with the same TLS
/// settings and deadline as our pushes.
pub fn fetch_options(
    repo: &gix::Repository,
    url: &str,
    idle: std::time::Duration,
) -> Result<Option<Box<dyn std::any::Any>>, String> {
    use gix::protocol::transport::client::blocking_io::http;
    let Some(options) = repo
        .transport_options(url, None)
        .map_err(|e| describe(&e))?
    else {
        return Ok(None);
    };
    let Ok(mut options) = options.downcast::<http::Options>() else {
        return Ok(None);
    };
    let tls = Tls::from_config(repo)?;
    let idle = low_speed_time(repo).unwrap_or(idle);
    let backend = http::reqwest::Options {
        configure_client: Some(Box::new(move |builder| {
            tls.configure(builder.connect_timeout(idle).timeout(idle))
                .map_err(|e| gix::Error::from_error(std::io::Error::other(e)))
        })),
        configure_request: None,
    };
    options.backend = Some(Arc::new(Mutex::new(backend)));
    Ok(Some(options))
}

/// git's other HTTP settings for `url`, as gix reads them (with
/// `http.<url>.*` matching): `http.proxy` (and `http.noProxy`; without
/// one, the `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` variables as curl reads
/// them), `http.extraHeader` and `http.followRedirects`.
fn git_settings(
    repo: &gix::Repository,
    url: &str,
    mut builder: ClientBuilder,
) -> Result<ClientBuilder, String> {
    use gix::protocol::transport::client::blocking_io::http::{Options, options::FollowRedirects};
    let Some(options) = repo
        .transport_options(url, None)
        .map_err(|e| describe(&e))?
        .and_then(|o| o.downcast::<Options>().ok())
    else {
        return Ok(builder);
    };
    if let Some(proxy) = options.proxy.as_deref().filter(|p| !p.is_empty()) {
        let proxy = reqwest::Proxy::all(proxy)
            .map_err(|e| format!("http.proxy {proxy:?}: {}", describe(&e)))?
            .no_proxy(
                options
                    .no_proxy
                    .as_deref()
                    .and_then(reqwest::NoProxy::from_string),
            );
        builder = builder.proxy(proxy);
    }
    let mut headers = reqwest::header::HeaderMap::new();
    for header in &options.extra_headers {
        let parsed = header.split_once(':').and_then(|(name, value)| {
            Some((
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
                reqwest::header::HeaderValue::from_str(value.trim()).ok()?,
            ))
        });
        let (name, value) = parsed.ok_or_else(|| {
            format!("http.extraHeader {header:?} is not a header of the form \"Name: value\"")
        })?;
        headers.append(name, value);
    }
    builder = builder.default_headers(headers);
    if options.follow_redirects == FollowRedirects::None {
        builder = builder.redirect(reqwest::redirect::Policy::none());
    }
    Ok(builder)
}

/// git's own deadline for HTTP, where the user set one: a transfer slower
/// than `http.lowSpeedLimit` bytes a second for `http.lowSpeedTime`
/// seconds (or `GIT_HTTP_LOW_SPEED_TIME`) is given up. Ours is a wait for
/// the next bytes, so the time is what carries over.
fn low_speed_time(repo: &gix::Repository) -> Option<std::time::Duration> {
    let seconds = match std::env::var("GIT_HTTP_LOW_SPEED_TIME") {
        Ok(text) => text.trim().parse::<u64>().ok(),
        Err(_) => repo
            .config_snapshot()
            .integer("http.lowSpeedTime")
            .and_then(|s| u64::try_from(s).ok()),
    };
    seconds
        .filter(|s| *s > 0)
        .map(std::time::Duration::from_secs)
}

/// The second half of a smart HTTP exchange: the request body collects
/// what the protocol sends, and goes out in one POST when it is complete.
pub(super) struct Post {
    client: Client,
    url: reqwest::Url,
    service: String,
    account: Option<Account>,
    endpoint: String,
    /// The request body so far.
    pub body: Vec<u8>,
}

/// Asks the server at `url` for `service`'s advertisement; returns it (the
/// service announcement already read) and the request to send next.
pub(super) fn open(
    url: &str,
    service: &str,
    repo: &gix::Repository,
    endpoint: &str,
    idle: std::time::Duration,
) -> Result<(Box<dyn Read + Send>, Post), TransportError> {
    let fail = |message: String| TransportError::Http {
        endpoint: endpoint.to_owned(),
        message,
    };
    let mut base = reqwest::Url::parse(url).map_err(|e| fail(format!("not a URL: {e}")))?;
    let mut account = (!base.username().is_empty())
        .then(|| base.password())
        .flatten()
        .map(|password| Account {
            username: percent_decoded(base.username()),
            password: percent_decoded(password),
            oauth_refresh_token: None,
        });
    let user = base.username().to_owned();
    let idle = low_speed_time(repo).unwrap_or(idle);
    // The credentials go in a header of our own making, never in a URL that
    // an error message could show.
    let _ = base.set_password(None);
    let _ = base.set_username("");
    let client = Tls::from_config(repo)
        .and_then(|tls| {
            tls.configure(
                Client::builder()
                    .user_agent(USER_AGENT)
                    .connect_timeout(idle)
                    // The deadline of every wait: for the connection, for
                    // each read and each write.
                    .timeout(idle),
            )
        })
        .and_then(|builder| git_settings(repo, url, builder))
        .map_err(fail)?
        .build()
        .map_err(|e| fail(describe(&e)))?;
    let info_refs = join(&base, &format!("info/refs?service={service}"));
    let get = |account: &Option<Account>| {
        authorised(client.get(info_refs.clone()), account)
            .send()
            .map_err(|e| fail(describe(&e)))
    };
    // As gix's fetch does, credentials never travel in clear text: a
    // password in an http:// URL, or a server that asks for one over it,
    // is refused before anything is sent.
    let cleartext = || {
        fail(
            "grite does not send credentials over plain http://, where anyone on the way could read them; use the https:// URL of the repository"
                .to_owned(),
        )
    };
    if base.scheme() == "http" && account.is_some() {
        return Err(cleartext());
    }
    let mut response = get(&account)?;
    if response.status() == StatusCode::UNAUTHORIZED && base.scheme() == "http" {
        return Err(cleartext());
    }
    if response.status() == StatusCode::UNAUTHORIZED && account.is_none() {
        let mut helpers = Helpers::for_url(repo, &base, &user).map_err(fail)?;
        account = Some(helpers.fill().map_err(fail)?);
        response = get(&account)?;
        match response.status() {
            status if status.is_success() => helpers.conclude(true),
            StatusCode::UNAUTHORIZED => helpers.conclude(false),
            // Neither accepted nor refused (a missing repository, say).
            _ => {}
        }
    }
    let response =
        check(response, &format!("application/x-{service}-advertisement")).map_err(fail)?;
    // The server may have redirected us; the POST goes where the
    // advertisement came from, never from https down to http, and the
    // credentials go only to the server they were given for.
    if let Some(moved) = response
        .url()
        .as_str()
        .split_once("/info/refs")
        .and_then(|(moved, _)| reqwest::Url::parse(moved).ok())
        && (moved.scheme() == base.scheme() || moved.scheme() == "https")
    {
        if moved.origin() != base.origin() {
            account = None;
        }
        base = moved;
    }
    let mut bytes = Vec::new();
    response
        .take(64 << 20)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("reading the advertisement: {e}")))?;
    let announced = parse_service_announcement(&bytes, service).map_err(|e| match e {
        ProtocolError::Incomplete { .. } => fail("the advertisement ended early".to_owned()),
        other => fail(format!(
            "it is not a smart git server for {service} (dumb HTTP cannot take a push): {other}"
        )),
    })?;
    bytes.drain(..announced);
    let post = Post {
        url: join(&base, service),
        client,
        service: service.to_owned(),
        account,
        endpoint: endpoint.to_owned(),
        body: Vec::new(),
    };
    Ok((Box::new(Cursor::new(bytes)), post))
}

impl Post {
    /// Sends the request; returns the reply to read.
    pub fn send(self) -> Result<Box<dyn Read + Send>, TransportError> {
        let fail = |message: String| TransportError::Http {
            endpoint: self.endpoint.clone(),
            message,
        };
        let service = &self.service;
        let request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, format!("application/x-{service}-request"))
            .header(ACCEPT, format!("application/x-{service}-result"))
            .body(self.body);
        let response = authorised(request, &self.account)
            .send()
            .map_err(|e| fail(describe(&e)))?;
        let response = check(response, &format!("application/x-{service}-result")).map_err(fail)?;
        Ok(Box::new(response))
    }
}

fn authorised(request: RequestBuilder, account: &Option<Account>) -> RequestBuilder {
    match account {
        Some(account) => request.basic_auth(&account.username, Some(&account.password)),
        None => request,
    }
}

/// The response if it is a success of the expected kind; what went wrong
/// otherwise, in the words a user can act on.
fn check(response: Response, content_type: &str) -> Result<Response, String> {
    let status = response.status();
    match status {
        StatusCode::UNAUTHORIZED => {
            return Err("authentication refused (HTTP 401): check the credentials".to_owned());
        }
        StatusCode::FORBIDDEN => {
            return Err(
                "access refused (HTTP 403): the server does not let this user push".to_owned(),
            );
        }
        StatusCode::NOT_FOUND => {
            return Err("repository not found (HTTP 404)".to_owned());
        }
        status if !status.is_success() => return Err(format!("the server answered HTTP {status}")),
        _ => {}
    }
    let actual = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none");
    if actual != content_type {
        return Err(format!(
            "it is not a smart git server: the reply is {actual}, not {content_type}"
        ));
    }
    Ok(response)
}

/// `base` with `path` appended below it (a repository URL names a
/// directory, with or without its trailing slash).
fn join(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut joined = base.as_str().trim_end_matches('/').to_owned();
    joined.push('/');
    joined.push_str(path);
    reqwest::Url::parse(&joined).unwrap_or_else(|_| base.clone())
}

/// An error with its causes on one line (reqwest's own message is only
/// "error sending request"), and what to do about an untrusted certificate.
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error_chain(error);
    if text.contains("certificate") {
        text.push_str(
            " (to trust a private CA, set http.sslCAInfo or GIT_SSL_CAINFO to its PEM file)",
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls_sit_below_the_repository() {
        let url = |u: &str| reqwest::Url::parse(u).expect("valid");
        for base in ["http://h/r.git", "http://h/r.git/"] {
            assert_eq!(
                join(&url(base), "info/refs?service=git-receive-pack").as_str(),
                "http://h/r.git/info/refs?service=git-receive-pack"
            );
        }
    }
}
