//! PieClient's Pie 0.5 calls (pie-server 0.5.x): which protocol a connection speaks, program
//! install/check by name@version, model_status. Launch by name is in instance.rs, with the other
//! instance-producing calls.

use std::ffi::{c_char, c_void, CString};
use std::future::Future;

use super::boundary::{arg_bytes, arg_out, arg_str, call, value};
use super::call::{start_async, Call};
use super::client::{client_arg, PieClient, PieProgressCallback};
use super::error::{FfiResult, PieError};
use super::hash::write_hash;
use super::op::PieOp;
use super::options::PieProtocol;
use super::status::PieStatus;
use super::string::to_cstring;

/// The protocol `client` speaks: PIE_PROTOCOL_JAN2026 or PIE_PROTOCOL_V05 once known (forced by
/// pie_connect_options_set_protocol, or detected from the server's first answer),
/// PIE_PROTOCOL_AUTO before that and for a NULL `client`. Calls made before detection work on
/// either server: each first goes out in January-2026 form and is redone in 0.5 form when the
/// server turns out to be 0.5 (one extra round trip, once).
#[no_mangle]
pub unsafe extern "C" fn pie_client_protocol(client: *const PieClient) -> PieProtocol {
    value(|| Ok(PieProtocol::from_core(client_arg(client)?.core.protocol())))
}

/// The install call; `artifact` is borrowed by the blocking form and owned by `_async`.
#[allow(clippy::too_many_arguments)]
unsafe fn install_program<'a, D: AsRef<[u8]> + Send + 'a>(
    client: *const PieClient,
    data: impl FnOnce(&'a [u8]) -> D,
    artifact: *const u8,
    len: usize,
    manifest: *const c_char,
    force_overwrite: bool,
    progress: PieProgressCallback,
    user_data: *mut c_void,
) -> FfiResult<Call<impl Future<Output = FfiResult<CString>> + 'a>> {
    let c = client_arg(client)?;
    let data = data(arg_bytes(artifact, len, "artifact")?);
    let manifest = arg_str(manifest, "manifest")?.to_owned();
    let progress = c.progress(progress, user_data);
    let core = c.core.clone();
    Ok(c.long_call(async move {
        let hash = core
            .install_program_with_progress(
                data.as_ref(),
                &manifest,
                force_overwrite,
                progress.as_deref(),
            )
            .await?;
        Ok(to_cstring(&hash))
    }))
}

fn borrowed(data: &[u8]) -> &[u8] {
    data
}

/// Pie 0.5: installs a program from its artifact (`len` bytes: a WebAssembly component, or the
/// script source when the manifest says `[runtime] language = "python"` or `"javascript"`) and
/// its manifest (TOML text with `[package] name` and `version`), in 256 KiB chunks. Writes the
/// artifact's hash (64 hex digits and a NUL) into `out_hash` (at least PIE_HASH_BUFFER_SIZE
/// bytes). `progress` (may be NULL) works as for pie_client_upload_program. The server replaces
/// an installed name@version silently, whatever `force_overwrite` says (a 0.5.2 defect).
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8, PIE_STATUS_INVALID_ARGUMENT (empty
/// manifest, before anything is sent), PIE_STATUS_SERVER (the server's text verbatim, e.g.
/// "Invalid manifest: Failed to parse manifest TOML: ..."), PIE_STATUS_UNSUPPORTED (a
/// January-2026 server: use pie_client_upload_program), PIE_STATUS_TIMEOUT,
/// PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn pie_client_install_program(
    client: *const PieClient,
    artifact: *const u8,
    len: usize,
    manifest: *const c_char,
    force_overwrite: bool,
    progress: PieProgressCallback,
    user_data: *mut c_void,
    out_hash: *mut c_char,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        arg_out(out_hash, "out_hash")?;
        let hash = install_program(
            client,
            borrowed,
            artifact,
            len,
            manifest,
            force_overwrite,
            progress,
            user_data,
        )?
        .block()?;
        write_hash(out_hash, hash.as_bytes());
        Ok(())
    })
}

/// Asynchronous pie_client_install_program (`artifact` and `manifest` are copied); the hash is
/// pie_op_result_string(op). `progress` runs on a libpie runtime thread; `user_data` must stay
/// valid until the operation finishes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn pie_client_install_program_async(
    client: *const PieClient,
    artifact: *const u8,
    len: usize,
    manifest: *const c_char,
    force_overwrite: bool,
    progress: PieProgressCallback,
    user_data: *mut c_void,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || {
        install_program(
            client,
            <[u8]>::to_vec,
            artifact,
            len,
            manifest,
            force_overwrite,
            progress,
            user_data,
        )
    })
}

unsafe fn check_program(
    client: *const PieClient,
    name: *const c_char,
    version: *const c_char,
) -> FfiResult<Call<impl Future<Output = FfiResult<bool>>>> {
    let c = client_arg(client)?;
    let name = arg_str(name, "name")?.to_owned();
    let version = arg_str(version, "version")?.to_owned();
    let core = c.core.clone();
    Ok(c.call(async move { Ok(core.check_program(&name, &version).await?) }))
}

/// Pie 0.5: whether `name`@`version` is installed or built in (compat-openai@0.1.0, ...); the
/// answer goes to `*out_installed`. `version` must be major.minor.patch.
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8, PIE_STATUS_INVALID_ARGUMENT (a name
/// or version of the wrong form, naming the parameter, before anything is sent),
/// PIE_STATUS_SERVER, PIE_STATUS_UNSUPPORTED (a January-2026 server: use
/// pie_client_program_exists), PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED,
/// PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_client_check_program(
    client: *const PieClient,
    name: *const c_char,
    version: *const c_char,
    out_installed: *mut bool,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        let out = arg_out(out_installed, "out_installed")?;
        *out = check_program(client, name, version)?.block()?;
        Ok(())
    })
}

/// Asynchronous pie_client_check_program; the answer is pie_op_result_bool(op, ...).
#[no_mangle]
pub unsafe extern "C" fn pie_client_check_program_async(
    client: *const PieClient,
    name: *const c_char,
    version: *const c_char,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || check_program(client, name, version))
}

unsafe fn model_status(
    client: *const PieClient,
) -> FfiResult<Call<impl Future<Output = FfiResult<CString>>>> {
    let c = client_arg(client)?;
    let core = c.core.clone();
    Ok(c.call(async move { Ok(to_cstring(&core.model_status().await?)) }))
}

/// Pie 0.5: the model's counters as JSON object text (`default.kv_pages_used`,
/// `default.kv_pages_total`, ...) in `*out_json`, owned by the caller (pie_string_free).
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_SERVER, PIE_STATUS_UNSUPPORTED (a January-2026
/// server), PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_client_model_status(
    client: *const PieClient,
    out_json: *mut *mut c_char,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        let out = arg_out(out_json, "out_json")?;
        *out = model_status(client)?.block()?.into_raw();
        Ok(())
    })
}

/// Asynchronous pie_client_model_status; the answer is pie_op_result_string(op).
#[no_mangle]
pub unsafe extern "C" fn pie_client_model_status_async(
    client: *const PieClient,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || model_status(client))
}
