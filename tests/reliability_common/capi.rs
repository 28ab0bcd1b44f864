//! Thin, test-only wrappers over the C ABI (the `extern "C"` functions of `pie::ffi`, called
//! exactly as a C host calls them), so threaded C-API tests can be written in Rust and run
//! under ThreadSanitizer with the rest of the crate.
#![allow(dead_code)]
// The opaque libpie types are only ever used behind pointers, as in C.
#![allow(improper_ctypes)]

use pie::ffi::{
    PieClient, PieConnectOptions, PieError, PieEvent, PieEventKind, PieInstance, PieInstanceList,
    PieOp, PieStatus,
};
use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;

pub type EventCb = unsafe extern "C" fn(*mut c_void, PieStatus, *const PieEvent);
pub type ConnCb = unsafe extern "C" fn(*mut c_void, PieStatus, *const c_char);
pub type DropCb = unsafe extern "C" fn(*mut c_void);

// The C ABI as include/pie.h declares it, resolved at link time against the `#[no_mangle]`
// definitions in the pie library, exactly as a C program links them.
extern "C" {
    pub fn pie_error_message(err: *const PieError) -> *const c_char;
    pub fn pie_error_free(err: *mut PieError);
    pub fn pie_connect_options_new() -> *mut PieConnectOptions;
    pub fn pie_connect_options_free(options: *mut PieConnectOptions);
    pub fn pie_connect_options_set_request_timeout_ms(
        options: *mut PieConnectOptions,
        timeout_ms: u32,
        out_err: *mut *mut PieError,
    ) -> PieStatus;
    pub fn pie_connect_options_set_instance_queue_limit_bytes(
        options: *mut PieConnectOptions,
        limit_bytes: u64,
        out_err: *mut *mut PieError,
    ) -> PieStatus;
    pub fn pie_client_connect(
        url: *const c_char,
        options: *const PieConnectOptions,
        out_client: *mut *mut PieClient,
        out_err: *mut *mut PieError,
    ) -> PieStatus;
    pub fn pie_client_authenticate(
        client: *const PieClient,
        username: *const c_char,
        key: *const c_void,
        out_err: *mut *mut PieError,
    ) -> PieStatus;
    pub fn pie_client_close(client: *const PieClient, out_err: *mut *mut PieError) -> PieStatus;
    pub fn pie_client_free(client: *mut PieClient);
    pub fn pie_client_ping(client: *const PieClient, out_err: *mut *mut PieError) -> PieStatus;
    pub fn pie_client_event_fd(
        client: *const PieClient,
        out_fd: *mut i32,
        out_err: *mut *mut PieError,
    ) -> PieStatus;
    pub fn pie_client_launch_instance_async(
        client: *const PieClient,
        hash: *const c_char,
        argv: *const *const c_char,
        argc: usize,
        detached: bool,
        out_op: *mut *mut PieOp,
        out_err: *mut *mut PieError,
    ) -> PieStatus;
    pub fn pie_op_wait(op: *const PieOp, timeout_ms: i32, out_err: *mut *mut PieError)
        -> PieStatus;
    pub fn pie_op_take_instance(
        op: *const PieOp,
        out_instance: *mut *mut PieInstance,
        out_err: *mut *mut PieError,
    ) -> PieStatus;
    pub fn pie_op_free(op: *mut PieOp);
    pub fn pie_client_launch_instance(
        client: *const PieClient,
        hash: *const c_char,
        argv: *const *const c_char,
        argc: usize,
        detached: bool,
        out_instance: *mut *mut PieInstance,
        out_err: *mut *mut PieError,
    ) -> PieStatus;
    pub fn pie_client_list_instances(
        client: *const PieClient,
        out_list: *mut *mut PieInstanceList,
        out_err: *mut *mut PieError,
    ) -> PieStatus;
    pub fn pie_client_set_connection_callback(
        client: *const PieClient,
        callback: Option<ConnCb>,
        user_data: *mut c_void,
        drop: Option<DropCb>,
        out_err: *mut *mut PieError,
    ) -> PieStatus;
    pub fn pie_instance_list_len(list: *const PieInstanceList) -> usize;
    pub fn pie_instance_list_free(list: *mut PieInstanceList);
    pub fn pie_instance_send(
        instance: *const PieInstance,
        message: *const c_char,
        out_err: *mut *mut PieError,
    ) -> PieStatus;
    pub fn pie_instance_terminate(
        instance: *const PieInstance,
        out_err: *mut *mut PieError,
    ) -> PieStatus;
    pub fn pie_instance_recv(
        instance: *const PieInstance,
        timeout_ms: i32,
        out_event: *mut *mut PieEvent,
        out_err: *mut *mut PieError,
    ) -> PieStatus;
    pub fn pie_instance_set_callback(
        instance: *const PieInstance,
        callback: Option<EventCb>,
        user_data: *mut c_void,
        drop: Option<DropCb>,
        out_err: *mut *mut PieError,
    ) -> PieStatus;
    pub fn pie_instance_free(instance: *mut PieInstance);
    pub fn pie_instance_id(instance: *const PieInstance) -> *const c_char;
    pub fn pie_event_kind(event: *const PieEvent) -> PieEventKind;
    pub fn pie_event_text(event: *const PieEvent, out_len: *mut usize) -> *const c_char;
    pub fn pie_event_dropped(event: *const PieEvent) -> u64;
    pub fn pie_event_free(event: *mut PieEvent);
}

/// A libpie handle shared between test threads (every handle is documented as usable from any
/// thread, concurrently).
#[derive(Debug)]
pub struct H<T>(pub *mut T);
// Manual impls: derive would require `T: Copy`, and the opaque types are not.
impl<T> Clone for H<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for H<T> {}
unsafe impl<T> Send for H<T> {}
unsafe impl<T> Sync for H<T> {}

/// (status, error message) of a failed call.
pub type Failure = (PieStatus, String);

unsafe fn take_err(err: *mut PieError) -> String {
    if err.is_null() {
        return String::new();
    }
    let m = CStr::from_ptr(pie_error_message(err))
        .to_string_lossy()
        .into_owned();
    pie_error_free(err);
    m
}

fn check(status: PieStatus, err: *mut PieError) -> Result<(), Failure> {
    let msg = unsafe { take_err(err) };
    if status == PieStatus::Ok {
        Ok(())
    } else {
        Err((status, msg))
    }
}

pub fn connect(
    url: &str,
    request_timeout_ms: u32,
    queue_limit: usize,
) -> Result<H<PieClient>, Failure> {
    let url = CString::new(url).unwrap();
    unsafe {
        let opts = pie_connect_options_new();
        assert_eq!(
            pie_connect_options_set_request_timeout_ms(opts, request_timeout_ms, ptr::null_mut()),
            PieStatus::Ok
        );
        if queue_limit > 0 {
            assert_eq!(
                pie_connect_options_set_instance_queue_limit_bytes(
                    opts,
                    queue_limit as u64,
                    ptr::null_mut()
                ),
                PieStatus::Ok
            );
        }
        let mut client = ptr::null_mut();
        let mut err = ptr::null_mut();
        let st = pie_client_connect(url.as_ptr(), opts, &mut client, &mut err);
        pie_connect_options_free(opts);
        check(st, err)?;
        let name = CString::new("alice").unwrap();
        let mut err = ptr::null_mut();
        let st = pie_client_authenticate(client, name.as_ptr(), ptr::null(), &mut err);
        if let Err(f) = check(st, err) {
            pie_client_free(client);
            return Err(f);
        }
        Ok(H(client))
    }
}

pub fn launch(c: H<PieClient>, hash: &str) -> Result<H<PieInstance>, Failure> {
    let hash = CString::new(hash).unwrap();
    let mut inst = ptr::null_mut();
    let mut err = ptr::null_mut();
    let st = unsafe {
        pie_client_launch_instance(
            c.0,
            hash.as_ptr(),
            ptr::null(),
            0,
            false,
            &mut inst,
            &mut err,
        )
    };
    check(st, err)?;
    Ok(H(inst))
}

pub fn event_fd(c: H<PieClient>) -> Result<i32, Failure> {
    let mut fd = -1;
    let mut err = ptr::null_mut();
    let st = unsafe { pie_client_event_fd(c.0, &mut fd, &mut err) };
    check(st, err)?;
    Ok(fd)
}

/// pie_client_launch_instance_async: the pending operation.
pub fn launch_async(c: H<PieClient>, hash: &str) -> Result<H<PieOp>, Failure> {
    let hash = CString::new(hash).unwrap();
    let mut op = ptr::null_mut();
    let mut err = ptr::null_mut();
    let st = unsafe {
        pie_client_launch_instance_async(
            c.0,
            hash.as_ptr(),
            ptr::null(),
            0,
            false,
            &mut op,
            &mut err,
        )
    };
    check(st, err)?;
    Ok(H(op))
}

/// Takes the instance out of a finished launch operation and frees the operation.
pub fn take_instance(op: H<PieOp>) -> Result<H<PieInstance>, Failure> {
    let mut inst = ptr::null_mut();
    let mut err = ptr::null_mut();
    let st = unsafe { pie_op_take_instance(op.0, &mut inst, &mut err) };
    unsafe { pie_op_free(op.0) };
    check(st, err)?;
    Ok(H(inst))
}

pub fn ping(c: H<PieClient>) -> Result<(), Failure> {
    let mut err = ptr::null_mut();
    let st = unsafe { pie_client_ping(c.0, &mut err) };
    check(st, err)
}

pub fn list(c: H<PieClient>) -> Result<usize, Failure> {
    let mut l = ptr::null_mut();
    let mut err = ptr::null_mut();
    let st = unsafe { pie_client_list_instances(c.0, &mut l, &mut err) };
    check(st, err)?;
    unsafe {
        let n = pie_instance_list_len(l);
        pie_instance_list_free(l);
        Ok(n)
    }
}

pub fn terminate(i: H<PieInstance>) -> Result<(), Failure> {
    let mut err = ptr::null_mut();
    let st = unsafe { pie_instance_terminate(i.0, &mut err) };
    check(st, err)
}

pub fn send(i: H<PieInstance>, text: &str) -> Result<(), Failure> {
    let t = CString::new(text).unwrap();
    let mut err = ptr::null_mut();
    let st = unsafe { pie_instance_send(i.0, t.as_ptr(), &mut err) };
    check(st, err)
}

pub fn close(c: H<PieClient>) -> Result<(), Failure> {
    let mut err = ptr::null_mut();
    let st = unsafe { pie_client_close(c.0, &mut err) };
    check(st, err)
}

/// An event copied out of its PieEvent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ev {
    pub kind: PieEventKind,
    pub text: String,
    pub dropped: u64,
}

pub unsafe fn copy_event(e: *const PieEvent) -> Ev {
    let mut len = 0usize;
    let t = pie_event_text(e, &mut len);
    let text = if t.is_null() {
        String::new()
    } else {
        String::from_utf8_lossy(std::slice::from_raw_parts(t.cast::<u8>(), len)).into_owned()
    };
    Ev {
        kind: pie_event_kind(e),
        text,
        dropped: pie_event_dropped(e),
    }
}

pub fn recv(i: H<PieInstance>, timeout_ms: i32) -> Result<Ev, Failure> {
    let mut ev = ptr::null_mut();
    let mut err = ptr::null_mut();
    let st = unsafe { pie_instance_recv(i.0, timeout_ms, &mut ev, &mut err) };
    check(st, err)?;
    unsafe {
        let e = copy_event(ev);
        pie_event_free(ev);
        Ok(e)
    }
}

pub fn free_instance(i: H<PieInstance>) {
    unsafe { pie_instance_free(i.0) }
}

pub fn free_client(c: H<PieClient>) {
    unsafe { pie_client_free(c.0) }
}

pub fn stdout(text: &str) -> Ev {
    Ev {
        kind: PieEventKind::Stdout,
        text: text.into(),
        dropped: 0,
    }
}

pub fn c_str(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

pub type UserData = *mut c_void;
