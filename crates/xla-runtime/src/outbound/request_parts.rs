//! Small fixed caps on what a connector can make the host keep in an
//! outgoing request before it is sent: its method, scheme, authority and
//! path. wasmtime-wasi-http copies them out of the guest and keeps them as
//! given, of any length: twenty unsent requests with a 100 MiB method held
//! 2 GB of host memory outside the instance's memory cap. These wrappers
//! shadow the four setters in the connector linker, read each part in
//! place in the guest's memory, and refuse an oversized one the way the
//! setter refuses a malformed one (`result::err`), before a byte of it is
//! copied.

use crate::state::PluginState;
use wasmtime::StoreContextMut;
use wasmtime::component::{ComponentType, Lift, Linker, Resource, WasmStr};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{HostOutgoingRequest, Method, OutgoingRequest, Scheme};

/// The `wasi:http/types` interface as wasmtime-wasi-http 48 defines it.
const INTERFACE: &str = "wasi:http/types@0.2.12";

/// Longest method: the allowed ones have at most 7 bytes (`OPTIONS`).
pub(crate) const MAX_METHOD_BYTES: usize = 32;
/// Longest scheme other than `http` and `https` (refused at send anyway).
pub(crate) const MAX_SCHEME_BYTES: usize = 32;
/// A 253-byte DNS name (or a bracketed IPv6 literal), `:` and a port.
pub(crate) const MAX_AUTHORITY_BYTES: usize = 262;
/// Longest path and query, as many servers limit their request line.
pub(crate) const MAX_PATH_WITH_QUERY_BYTES: usize = 8 * 1024;

/// `wasi:http/types.method`, its `other` case left in the guest's memory.
#[derive(ComponentType, Lift)]
#[component(variant)]
enum MethodArg {
    #[component(name = "get")]
    Get,
    #[component(name = "head")]
    Head,
    #[component(name = "post")]
    Post,
    #[component(name = "put")]
    Put,
    #[component(name = "delete")]
    Delete,
    #[component(name = "connect")]
    Connect,
    #[component(name = "options")]
    Options,
    #[component(name = "trace")]
    Trace,
    #[component(name = "patch")]
    Patch,
    #[component(name = "other")]
    Other(WasmStr),
}

/// `wasi:http/types.scheme`, its `other` case left in the guest's memory.
#[derive(ComponentType, Lift)]
#[component(variant)]
enum SchemeArg {
    #[component(name = "HTTP")]
    Http,
    #[component(name = "HTTPS")]
    Https,
    #[component(name = "other")]
    Other(WasmStr),
}

type Answer = wasmtime::Result<(Result<(), ()>,)>;

/// The string, copied only when it is at most `max` bytes (`to_str` reads
/// UTF-8 in place, so an oversized one is never copied).
fn capped(store: &StoreContextMut<'_, PluginState>, s: &WasmStr, max: usize) -> wasmtime::Result<Option<String>> {
    let text = s.to_str(store)?;
    if text.len() > max {
        return Ok(None);
    }
    Ok(Some(text.into_owned()))
}

/// Shadows the setters of `outgoing-request` with capped ones. Call after
/// `wasi:http` has been added to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(INTERFACE)?;
    types.func_wrap(
        "[method]outgoing-request.set-method",
        |mut store, (request, method): (Resource<OutgoingRequest>, MethodArg)| -> Answer {
            let method = match method {
                MethodArg::Get => Method::Get,
                MethodArg::Head => Method::Head,
                MethodArg::Post => Method::Post,
                MethodArg::Put => Method::Put,
                MethodArg::Delete => Method::Delete,
                MethodArg::Connect => Method::Connect,
                MethodArg::Options => Method::Options,
                MethodArg::Trace => Method::Trace,
                MethodArg::Patch => Method::Patch,
                MethodArg::Other(s) => match capped(&store, &s, MAX_METHOD_BYTES)? {
                    Some(s) => Method::Other(s),
                    None => return Ok((Err(()),)),
                },
            };
            Ok((store.data_mut().http().set_method(request, method)?,))
        },
    )?;
    types.func_wrap(
        "[method]outgoing-request.set-scheme",
        |mut store, (request, scheme): (Resource<OutgoingRequest>, Option<SchemeArg>)| -> Answer {
            let scheme = match scheme {
                None => None,
                Some(SchemeArg::Http) => Some(Scheme::Http),
                Some(SchemeArg::Https) => Some(Scheme::Https),
                Some(SchemeArg::Other(s)) => match capped(&store, &s, MAX_SCHEME_BYTES)? {
                    Some(s) => Some(Scheme::Other(s)),
                    None => return Ok((Err(()),)),
                },
            };
            Ok((store.data_mut().http().set_scheme(request, scheme)?,))
        },
    )?;
    types.func_wrap(
        "[method]outgoing-request.set-authority",
        |mut store, (request, authority): (Resource<OutgoingRequest>, Option<WasmStr>)| -> Answer {
            let authority = match authority {
                None => None,
                Some(s) => match capped(&store, &s, MAX_AUTHORITY_BYTES)? {
                    Some(s) => Some(s),
                    None => return Ok((Err(()),)),
                },
            };
            Ok((store.data_mut().http().set_authority(request, authority)?,))
        },
    )?;
    types.func_wrap(
        "[method]outgoing-request.set-path-with-query",
        |mut store, (request, path): (Resource<OutgoingRequest>, Option<WasmStr>)| -> Answer {
            let path = match path {
                None => None,
                Some(s) => match capped(&store, &s, MAX_PATH_WITH_QUERY_BYTES)? {
                    Some(s) => Some(s),
                    None => return Ok((Err(()),)),
                },
            };
            Ok((store.data_mut().http().set_path_with_query(request, path)?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
