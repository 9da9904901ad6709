//! Signed writes: who may write to the relay, checked before anything else about a request.
//!
//! Every request that is not a read (`PUT`, `POST`, `DELETE`), and every request under
//! `/api/v1/admin/`, must carry an `Authorization: Kinema ...` header ([`WriteAuth`]): a chain
//! account's signature over the method, the path and query, the body's blake3 and the time.
//! [`signed`] answers 401 with the reason when the header is missing or malformed, the time is
//! outside [`REPLAY_WINDOW_MS`] of the relay's clock, the signature does not verify, or the
//! same signature was seen before within the window; otherwise the handler finds the
//! [`Signer`] in the request's extensions and checks the body against [`Signer::body`] as it
//! reads it. Seen signatures are held at most [`REPLAYS_KEPT`] at once; beyond that, writes
//! wait (429) until the oldest leave the window.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kinema_chain::{Address, Hash, Signature};
use kinema_http::Error;

use crate::api::{AUTH_SCHEME, REPLAY_WINDOW_MS, WriteAuth, now_ms};

/// Signatures remembered at most within the replay window.
pub const REPLAYS_KEPT: usize = 200_000;

/// Who signed a write, and the body they signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signer {
    /// The account.
    pub account: Address,
    /// The blake3 of the body the signature covers.
    pub body: Hash,
}

impl Signer {
    /// Checks that the body read is the one signed: 401 when it is not.
    pub fn check_body(&self, read: &Hash) -> Result<(), Error> {
        if *read == self.body {
            return Ok(());
        }
        Err(unauthorized(format!(
            "the body's blake3 is {read}, the signature covers {}",
            self.body
        )))
    }
}

/// The signatures accepted within the replay window, oldest first.
#[derive(Debug, Default)]
pub struct Replays {
    seen: Mutex<Seen>,
}

/// The signatures seen, and when each may be forgotten (in the order they came).
type Seen = (HashSet<Signature>, VecDeque<(u64, Signature)>);

impl Replays {
    /// Records `signature`, made at `time_ms`, seen `now_ms`: false when it was seen before.
    /// Forgets what left the window; 429 when the window holds [`REPLAYS_KEPT`] already.
    fn admit(&self, signature: Signature, time_ms: u64, now_ms: u64) -> Result<bool, Error> {
        let mut guard = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (seen, order) = &mut *guard;
        // A signature can be replayed until its time leaves the window; keep it that long.
        while let Some((expires, old)) = order.front().copied()
            && expires < now_ms
        {
            order.pop_front();
            seen.remove(&old);
        }
        if seen.contains(&signature) {
            return Ok(false);
        }
        if seen.len() >= REPLAYS_KEPT {
            return Err(Error::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "the relay has taken {REPLAYS_KEPT} signed writes within {} s: try again later",
                    REPLAY_WINDOW_MS / 1000
                ),
            ));
        }
        seen.insert(signature);
        // Kept in order of insertion; expiries are close to monotonic (times within the window).
        order.push_back((time_ms.saturating_add(REPLAY_WINDOW_MS).max(now_ms), signature));
        Ok(true)
    }

    /// How many signatures are remembered.
    pub fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).0.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A 401 with `why`, naming the scheme expected.
pub fn unauthorized(why: impl Into<String>) -> Error {
    Error::new(StatusCode::UNAUTHORIZED, why)
}

/// Whether a request must be signed.
pub fn must_sign(method: &Method, path: &str) -> bool {
    crate::api::must_sign(method.as_str(), path)
}

/// The middleware: checks the signature of a request that must be signed, before its body is
/// read, and hands the handler its [`Signer`].
pub async fn signed(
    State(replays): State<std::sync::Arc<Replays>>,
    mut request: Request,
    next: Next,
) -> Response {
    if !must_sign(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    match check(&replays, &request, now_ms()) {
        Ok(signer) => {
            request.extensions_mut().insert(signer);
            next.run(request).await
        }
        Err(e) => {
            let mut response = e.into_response();
            if response.status() == StatusCode::UNAUTHORIZED {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(AUTH_SCHEME));
            }
            response
        }
    }
}

/// The signer of `request`, or why it is refused.
fn check(replays: &Replays, request: &Request, now_ms: u64) -> Result<Signer, Error> {
    let method = request.method().as_str();
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let header = request.headers().get(header::AUTHORIZATION).filter(|h| !h.is_empty());
    let header = header.ok_or_else(|| {
        unauthorized(format!(
            "{method} {} must be signed by a chain account: Authorization: {AUTH_SCHEME} \
             key=<public key>,time=<unix ms>,body=<blake3 of the body>,sig=<signature>",
            request.uri().path()
        ))
    })?;
    let header = header
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not visible ASCII"))?;
    let auth = WriteAuth::parse(header).map_err(unauthorized)?;
    let skew = now_ms.abs_diff(auth.time_ms);
    if skew > REPLAY_WINDOW_MS {
        return Err(unauthorized(format!(
            "signed at {} ms, {} s from the relay's clock ({now_ms} ms); a signature is good for \
             {} s either way",
            auth.time_ms,
            skew / 1000,
            REPLAY_WINDOW_MS / 1000
        )));
    }
    let account = auth.verify(method, path).map_err(unauthorized)?;
    if !replays.admit(auth.signature, auth.time_ms, now_ms)? {
        return Err(unauthorized(format!(
            "this signature by {account} was used before: sign each write anew"
        )));
    }
    Ok(Signer { account, body: auth.body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinema_chain::crypto::SecretKey;

    fn request(method: &str, path: &str, auth: Option<String>) -> Request {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(auth) = auth {
            builder = builder.header(header::AUTHORIZATION, auth);
        }
        builder.body(axum::body::Body::empty()).unwrap_or_default()
    }

    fn refused(result: Result<Signer, Error>) -> String {
        match result {
            Ok(signer) => panic!("accepted as {signer:?}"),
            Err(e) => {
                assert_eq!(e.status(), StatusCode::UNAUTHORIZED, "{}", e.message());
                e.message().to_owned()
            }
        }
    }

    #[test]
    fn a_signature_is_good_once_for_its_method_path_body_and_time() {
        let key = SecretKey::from_seed([3; 32]);
        let replays = Replays::default();
        let now = 1_800_000_000_000;
        let path = "/api/v1/blobs/ab";
        let auth = WriteAuth::sign(&key, "PUT", path, b"bytes", now - 1000).header();
        let signer = check(&replays, &request("PUT", path, Some(auth.clone())), now).unwrap();
        assert_eq!(signer, Signer { account: key.address(), body: Hash::digest(b"bytes") });
        assert!(
            refused(check(&replays, &request("PUT", path, Some(auth.clone())), now))
                .contains("used before")
        );
        // Another method or path, or a time outside the window, is refused.
        let fresh = || WriteAuth::sign(&key, "PUT", path, b"bytes", now).header();
        assert!(
            refused(check(&replays, &request("POST", path, Some(fresh())), now))
                .contains("signature is not")
        );
        assert!(
            refused(check(&replays, &request("PUT", "/api/v1/blobs/cd", Some(fresh())), now))
                .contains("signature is not")
        );
        let old = WriteAuth::sign(&key, "PUT", path, b"bytes", now - REPLAY_WINDOW_MS - 1).header();
        assert!(
            refused(check(&replays, &request("PUT", path, Some(old)), now)).contains("good for")
        );
        // A key swapped for another's, or a tampered body hash, does not verify.
        let other = SecretKey::from_seed([4; 32]).public().to_string();
        let swapped = fresh().replace(&key.public().to_string(), &other);
        assert!(
            refused(check(&replays, &request("PUT", path, Some(swapped)), now))
                .contains("signature is not")
        );
        let body = Hash::digest(b"other").to_string();
        let tampered = fresh().replace(&Hash::digest(b"bytes").to_string(), &body);
        assert!(
            refused(check(&replays, &request("PUT", path, Some(tampered)), now))
                .contains("signature is not")
        );
        // Unsigned, or in another scheme, or malformed.
        assert!(
            refused(check(&replays, &request("PUT", path, None), now)).contains("must be signed")
        );
        assert!(
            refused(check(&replays, &request("PUT", path, Some("Bearer x".into())), now))
                .contains("scheme")
        );
        let garbled = fresh().replace("time=", "time=x");
        assert!(
            refused(check(&replays, &request("PUT", path, Some(garbled)), now)).contains("time")
        );
        // Once the window has passed, the replay table forgets it (and it is stale anyway).
        assert_eq!(replays.len(), 1);
        let later = now + 2 * REPLAY_WINDOW_MS;
        let next = WriteAuth::sign(&key, "PUT", path, b"bytes", later).header();
        check(&replays, &request("PUT", path, Some(next)), later).unwrap();
        assert_eq!(replays.len(), 1);
    }

    #[test]
    fn the_replay_table_is_bounded_and_a_flood_of_signed_writes_waits() {
        let replays = Replays::default();
        let now = 1_800_000_000_000;
        let signature = |i: usize| {
            let mut bytes = [0u8; 64];
            bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Signature(bytes)
        };
        for i in 0..REPLAYS_KEPT {
            assert_eq!(replays.admit(signature(i), now, now).map_err(|e| e.status()), Ok(true));
        }
        let full = replays.admit(signature(REPLAYS_KEPT), now, now).unwrap_err();
        assert_eq!(full.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(replays.len(), REPLAYS_KEPT);
        // Once the window has passed, the table empties and takes writes again.
        let later = now + REPLAY_WINDOW_MS + 1;
        assert_eq!(
            replays.admit(signature(REPLAYS_KEPT), later, later).map_err(|e| e.status()),
            Ok(true)
        );
        assert_eq!(replays.len(), 1);
    }

    #[test]
    fn reads_need_no_signature_but_writes_and_the_operators_reads_do() {
        assert!(!must_sign(&Method::GET, "/api/v1/blobs/x"));
        assert!(!must_sign(&Method::OPTIONS, "/api/v1/blobs/x"));
        assert!(must_sign(&Method::PUT, "/api/v1/blobs/x"));
        assert!(must_sign(&Method::POST, "/anything"));
        assert!(must_sign(&Method::DELETE, "/api/v1/admin/denied/x"));
        assert!(must_sign(&Method::GET, "/api/v1/admin/denied"));
    }
}
