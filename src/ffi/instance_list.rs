//! PieInstanceList: the answer of pie_client_list_instances, and its accessors.

use std::ffi::{c_char, CString};
use std::future::Future;

use crate::wire::{InstanceInfo, InstanceStatus};

use super::boundary::{arg_out, arg_ref, call, value};
use super::call::{start_async, Call};
use super::client::{client_arg, PieClient};
use super::error::{Fail, FfiResult, PieError};
use super::op::{take_result, PieOp};
use super::status::PieStatus;
use super::string::to_cstring;

/// State of a listed instance. Stable numbers.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieInstanceStatus {
    /// Running, with a client attached.
    Attached = 0,
    /// Running with no client attached.
    Detached = 1,
    /// Finished; still listed by the server.
    Finished = 2,
}

struct ListItem {
    id: CString,
    arguments: Vec<CString>,
    status: PieInstanceStatus,
    username: CString,
    elapsed_secs: u64,
    kv_pages_used: u32,
}

/// The result of pie_client_list_instances (opaque): owned by the caller,
/// pie_instance_list_free. Immutable: readable from any thread. Strings returned by its accessors
/// are borrowed, valid until the list is freed.
pub struct PieInstanceList {
    items: Vec<ListItem>,
}

impl PieInstanceList {
    fn new(infos: Vec<InstanceInfo>) -> PieInstanceList {
        let items = infos
            .into_iter()
            .map(|i| ListItem {
                id: to_cstring(&i.id),
                arguments: i.arguments.iter().map(|a| to_cstring(a)).collect(),
                status: match i.status {
                    InstanceStatus::Attached => PieInstanceStatus::Attached,
                    InstanceStatus::Detached => PieInstanceStatus::Detached,
                    InstanceStatus::Finished => PieInstanceStatus::Finished,
                },
                username: to_cstring(&i.username),
                elapsed_secs: i.elapsed_secs,
                kv_pages_used: i.kv_pages_used,
            })
            .collect();
        PieInstanceList { items }
    }
}

unsafe fn list_instances(
    client: *const PieClient,
) -> FfiResult<Call<impl Future<Output = FfiResult<Box<PieInstanceList>>>>> {
    let c = client_arg(client)?;
    let core = c.core.clone();
    Ok(c.call(async move { Ok(Box::new(PieInstanceList::new(core.list_instances().await?))) }))
}

/// Lists the instances on the server visible to this session; `*out_list` is owned by the caller
/// (pie_instance_list_free). Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_TIMEOUT,
/// PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_client_list_instances(
    client: *const PieClient,
    out_list: *mut *mut PieInstanceList,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        let out = arg_out(out_list, "out_list")?;
        *out = Box::into_raw(list_instances(client)?.block()?);
        Ok(())
    })
}

/// Asynchronous pie_client_list_instances (pie_op_take_instance_list).
#[no_mangle]
pub unsafe extern "C" fn pie_client_list_instances_async(
    client: *const PieClient,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || list_instances(client))
}

/// Moves the list out of a finished pie_client_list_instances_async operation. The caller owns
/// it (pie_instance_list_free). Errors as pie_op_take_client.
#[no_mangle]
pub unsafe extern "C" fn pie_op_take_instance_list(
    op: *const PieOp,
    out_list: *mut *mut PieInstanceList,
    out_err: *mut *mut PieError,
) -> PieStatus {
    take_result(op, out_list, out_err, |l: Box<PieInstanceList>| {
        Box::into_raw(l)
    })
}

unsafe fn item<'a>(list: *const PieInstanceList, index: usize) -> FfiResult<&'a ListItem> {
    let l = arg_ref(list, "list")?;
    l.items.get(index).ok_or_else(|| {
        Fail::new(
            PieStatus::InvalidArgument,
            format!(
                "index {index} is out of range (the list has {} entries)",
                l.items.len()
            ),
        )
    })
}

/// Shared body of the numeric list accessors.
unsafe fn list_field<T>(
    list: *const PieInstanceList,
    index: usize,
    out: *mut T,
    out_err: *mut *mut PieError,
    get: impl FnOnce(&ListItem) -> T,
) -> PieStatus {
    call(out_err, || {
        let out = arg_out(out, "out")?;
        *out = get(item(list, index)?);
        Ok(())
    })
}

/// Number of instances in the list (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_len(list: *const PieInstanceList) -> usize {
    value(|| Ok(arg_ref(list, "list")?.items.len()))
}

/// Id of entry `index` (borrowed). NULL if `list` is NULL or `index` out of range.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_id(
    list: *const PieInstanceList,
    index: usize,
) -> *const c_char {
    value(|| Ok(item(list, index)?.id.as_ptr()))
}

/// User name of the session that launched entry `index` (borrowed; empty if the server did not
/// say). NULL if `list` is NULL or `index` out of range.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_username(
    list: *const PieInstanceList,
    index: usize,
) -> *const c_char {
    value(|| Ok(item(list, index)?.username.as_ptr()))
}

/// Writes the number of launch arguments of entry `index` to `*out_count`.
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT (index out of range).
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_argument_count(
    list: *const PieInstanceList,
    index: usize,
    out_count: *mut usize,
    out_err: *mut *mut PieError,
) -> PieStatus {
    list_field(list, index, out_count, out_err, |i| i.arguments.len())
}

/// Launch argument `arg_index` of entry `index` (borrowed). NULL if out of range or `list` is NULL.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_argument(
    list: *const PieInstanceList,
    index: usize,
    arg_index: usize,
) -> *const c_char {
    value(|| {
        let it = item(list, index)?;
        it.arguments
            .get(arg_index)
            .map(|a| a.as_ptr())
            .ok_or_else(|| Fail::new(PieStatus::InvalidArgument, "argument index out of range"))
    })
}

/// Writes the state of entry `index` to `*out_status`. Errors as
/// pie_instance_list_argument_count.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_status(
    list: *const PieInstanceList,
    index: usize,
    out_status: *mut PieInstanceStatus,
    out_err: *mut *mut PieError,
) -> PieStatus {
    list_field(list, index, out_status, out_err, |i| i.status)
}

/// Writes the whole seconds since entry `index` was launched to `*out_secs`. Errors as
/// pie_instance_list_argument_count.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_elapsed_secs(
    list: *const PieInstanceList,
    index: usize,
    out_secs: *mut u64,
    out_err: *mut *mut PieError,
) -> PieStatus {
    list_field(list, index, out_secs, out_err, |i| i.elapsed_secs)
}

/// Writes the KV-cache pages used by entry `index` to `*out_pages` (always 0 on current servers).
/// Errors as pie_instance_list_argument_count.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_kv_pages_used(
    list: *const PieInstanceList,
    index: usize,
    out_pages: *mut u32,
    out_err: *mut *mut PieError,
) -> PieStatus {
    list_field(list, index, out_pages, out_err, |i| i.kv_pages_used)
}

/// Frees a list. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_free(list: *mut PieInstanceList) {
    value(|| {
        if !list.is_null() {
            drop(Box::from_raw(list));
        }
        Ok(())
    })
}
