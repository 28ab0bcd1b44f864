//! Thin safe wrappers over the C ABI, used the way a C host would use them: blocking calls,
//! NUL-terminated strings. Every call goes to the real exported function (`pie::ffi::pie_*`,
//! the same `#[no_mangle] extern "C"` definitions a C host links); nothing here re-declares
//! the ABI, so a signature change in the library breaks this build instead of drifting.

use pie::ffi::{
    pie_client_authenticate, pie_client_connect, pie_client_free, pie_client_launch_instance,
    pie_client_ping, pie_client_ping_async, pie_client_upload_program, pie_connect_options_free,
    pie_connect_options_new, pie_connect_options_set_tcp_quickack, pie_error_free,
    pie_error_message, pie_event_free, pie_event_is_terminal, pie_event_kind, pie_event_text,
    pie_instance_free, pie_instance_recv, pie_instance_send, pie_instance_set_callback,
    pie_op_free, pie_op_wait, pie_status_name, PieClient, PieError, PieEvent, PieEventKind,
    PieInstance, PieOp, PieStatus, PIE_HASH_BUFFER_SIZE,
};
use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;

pub type R<T> = Result<T, String>;

/// Turns a status plus optional error object into a Result (freeing the error).
unsafe fn check(what: &str, status: PieStatus, err: *mut PieError) -> R<()> {
    if status == PieStatus::Ok {
        return Ok(());
    }
    let msg = if err.is_null() {
        String::new()
    } else {
        let m = CStr::from_ptr(pie_error_message(err))
            .to_string_lossy()
            .into_owned();
        pie_error_free(err);
        m
    };
    let name = CStr::from_ptr(pie_status_name(status as i32)).to_string_lossy();
    Err(format!("{what}: {name}: {msg}"))
}

pub struct CClient(pub *mut PieClient);
// SAFETY: libpie documents every client function as callable from any thread.
unsafe impl Send for CClient {}
unsafe impl Sync for CClient {}

impl Drop for CClient {
    fn drop(&mut self) {
        // SAFETY: a client we own, freed once.
        unsafe { pie_client_free(self.0) }
    }
}

pub struct CInstance(pub *mut PieInstance);
// SAFETY: as for CClient.
unsafe impl Send for CInstance {}
unsafe impl Sync for CInstance {}

impl Drop for CInstance {
    fn drop(&mut self) {
        // SAFETY: an instance we own, freed once.
        unsafe { pie_instance_free(self.0) }
    }
}

/// Connects (quickack as given, everything else default) and authenticates (auth disabled on
/// the simulator, so no key).
pub fn connect(url: &str, quickack: bool) -> R<CClient> {
    let url = CString::new(url).map_err(|e| e.to_string())?;
    // SAFETY: valid C strings and out-pointers; objects freed by their owners.
    unsafe {
        let opts = pie_connect_options_new();
        if opts.is_null() {
            return Err("pie_connect_options_new returned NULL".into());
        }
        let mut err = ptr::null_mut();
        let st = pie_connect_options_set_tcp_quickack(opts, quickack, &mut err);
        if let Err(e) = check("set_tcp_quickack", st, err) {
            pie_connect_options_free(opts);
            return Err(e);
        }
        let mut client = ptr::null_mut();
        let mut err = ptr::null_mut();
        let st = pie_client_connect(url.as_ptr(), opts, &mut client, &mut err);
        pie_connect_options_free(opts);
        check("pie_client_connect", st, err)?;
        let client = CClient(client);
        let user = c"bench";
        let mut err = ptr::null_mut();
        let st = pie_client_authenticate(client.0, user.as_ptr(), ptr::null(), &mut err);
        check("pie_client_authenticate", st, err)?;
        Ok(client)
    }
}

pub fn ping(c: &CClient) -> R<()> {
    let mut err = ptr::null_mut();
    // SAFETY: live client.
    unsafe { check("pie_client_ping", pie_client_ping(c.0, &mut err), err) }
}

/// `n` pings in flight at once: `n` pie_client_ping_async operations started back to back,
/// then each waited for and freed (the way a C host pipelines requests on one thread).
pub fn ping_in_flight(c: &CClient, n: usize) -> R<()> {
    let mut ops: Vec<*mut PieOp> = Vec::with_capacity(n);
    let mut result = Ok(());
    for _ in 0..n {
        let mut op = ptr::null_mut();
        let mut err = ptr::null_mut();
        // SAFETY: live client, valid out-pointers.
        let st = unsafe { pie_client_ping_async(c.0, &mut op, &mut err) };
        // SAFETY: status and error object from the call above.
        if let Err(e) = unsafe { check("pie_client_ping_async", st, err) } {
            result = Err(e);
            break;
        }
        ops.push(op);
    }
    for op in ops {
        // SAFETY: operations we own, each waited for and freed once.
        unsafe {
            let st = pie_op_wait(op, -1, ptr::null_mut());
            if st != PieStatus::Ok && result.is_ok() {
                let name = CStr::from_ptr(pie_status_name(st as i32)).to_string_lossy();
                result = Err(format!("pie_op_wait: {name}"));
            }
            pie_op_free(op);
        }
    }
    result
}

pub fn upload(c: &CClient, program: &[u8]) -> R<String> {
    let mut hash = [0 as c_char; PIE_HASH_BUFFER_SIZE];
    let mut err = ptr::null_mut();
    // SAFETY: live client, valid slice, buffer of the documented size.
    unsafe {
        let st = pie_client_upload_program(
            c.0,
            program.as_ptr(),
            program.len(),
            None,
            ptr::null_mut(),
            hash.as_mut_ptr(),
            &mut err,
        );
        check("pie_client_upload_program", st, err)?;
        Ok(CStr::from_ptr(hash.as_ptr()).to_string_lossy().into_owned())
    }
}

pub fn launch(c: &CClient, hash: &str, args: &[&str]) -> R<CInstance> {
    let hash = CString::new(hash).map_err(|e| e.to_string())?;
    let args: Vec<CString> = args
        .iter()
        .map(|a| CString::new(*a).map_err(|e| e.to_string()))
        .collect::<R<_>>()?;
    let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    let mut inst = ptr::null_mut();
    let mut err = ptr::null_mut();
    // SAFETY: live client, valid C strings, argv of argc entries.
    unsafe {
        let st = pie_client_launch_instance(
            c.0,
            hash.as_ptr(),
            if argv.is_empty() {
                ptr::null()
            } else {
                argv.as_ptr()
            },
            argv.len(),
            false,
            &mut inst,
            &mut err,
        );
        check("pie_client_launch_instance", st, err)?;
    }
    Ok(CInstance(inst))
}

pub fn send(i: &CInstance, msg: &CStr) -> R<()> {
    let mut err = ptr::null_mut();
    // SAFETY: live instance, valid C string.
    unsafe {
        check(
            "pie_instance_send",
            pie_instance_send(i.0, msg.as_ptr(), &mut err),
            err,
        )
    }
}

/// An owned event from pie_instance_recv.
pub struct CEvent(*mut PieEvent);

impl CEvent {
    pub fn kind(&self) -> PieEventKind {
        // SAFETY: live event.
        unsafe { pie_event_kind(self.0) }
    }
    pub fn is_terminal(&self) -> bool {
        // SAFETY: live event.
        unsafe { pie_event_is_terminal(self.0) }
    }
    pub fn text_len(&self) -> usize {
        text_len(self.0)
    }
}

impl Drop for CEvent {
    fn drop(&mut self) {
        // SAFETY: an event we own, freed once.
        unsafe { pie_event_free(self.0) }
    }
}

/// Length of an event's text (reads it through the C accessor, as a host would).
pub fn text_len(ev: *const PieEvent) -> usize {
    let mut len = 0usize;
    // SAFETY: live (owned or borrowed) event, valid out-pointer.
    let p = unsafe { pie_event_text(ev, &mut len) };
    if p.is_null() {
        0
    } else {
        len
    }
}

/// pie_instance_recv: Ok(Some) with an event, Ok(None) on TIMEOUT, Err with the status otherwise.
pub fn recv(i: &CInstance, timeout_ms: i32) -> Result<Option<CEvent>, PieStatus> {
    let mut ev = ptr::null_mut();
    // SAFETY: live instance, valid out-pointer; no error object requested.
    let st = unsafe { pie_instance_recv(i.0, timeout_ms, &mut ev, ptr::null_mut()) };
    match st {
        PieStatus::Ok => Ok(Some(CEvent(ev))),
        PieStatus::Timeout => Ok(None),
        s => Err(s),
    }
}

/// What event callbacks report to: shared by any number of instances.
#[derive(Default)]
pub struct CbSink {
    pub stdout: std::sync::atomic::AtomicU64,
    pub events: std::sync::atomic::AtomicU64,
    pub text_bytes: std::sync::atomic::AtomicU64,
    /// Final calls seen, and how many of them ended with something else than STREAM_ENDED.
    finals: std::sync::Mutex<(u64, u64)>,
    cv: std::sync::Condvar,
}

impl CbSink {
    /// Waits until `n` streams have ended; returns how many ended abnormally.
    pub fn wait_finals(&self, n: u64, limit: std::time::Duration) -> R<u64> {
        let deadline = std::time::Instant::now() + limit;
        let mut g = self.finals.lock().map_err(|e| e.to_string())?;
        while g.0 < n {
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(format!("only {} of {n} event streams ended in time", g.0));
            }
            g = self
                .cv
                .wait_timeout(g, deadline - now)
                .map_err(|e| e.to_string())?
                .0;
        }
        Ok(g.1)
    }
}

unsafe extern "C" fn on_event(user_data: *mut c_void, status: PieStatus, ev: *const PieEvent) {
    use std::sync::atomic::Ordering::Relaxed;
    crate::alloc::set_category(crate::alloc::CALLBACK);
    // SAFETY: user_data is the Arc<CbSink> registered below, alive until on_drop.
    let sink = &*(user_data as *const CbSink);
    if ev.is_null() {
        let mut g = sink.finals.lock().unwrap_or_else(|e| e.into_inner());
        g.0 += 1;
        if status != PieStatus::StreamEnded {
            g.1 += 1;
        }
        drop(g);
        sink.cv.notify_all();
        return;
    }
    sink.events.fetch_add(1, Relaxed);
    if pie_event_kind(ev) == PieEventKind::Stdout {
        sink.stdout.fetch_add(1, Relaxed);
    }
    sink.text_bytes.fetch_add(text_len(ev) as u64, Relaxed);
}

unsafe extern "C" fn on_drop(user_data: *mut c_void) {
    // SAFETY: releases the reference taken in set_callback, once (libpie's guarantee).
    drop(std::sync::Arc::from_raw(user_data as *const CbSink));
}

pub fn set_callback(i: &CInstance, sink: &std::sync::Arc<CbSink>) -> R<()> {
    let ud = std::sync::Arc::into_raw(sink.clone()) as *mut c_void;
    let mut err = ptr::null_mut();
    // SAFETY: live instance; callbacks with the documented signatures.
    unsafe {
        let st = pie_instance_set_callback(i.0, Some(on_event), ud, Some(on_drop), &mut err);
        if st != PieStatus::Ok {
            drop(std::sync::Arc::from_raw(ud as *const CbSink));
        }
        check("pie_instance_set_callback", st, err)
    }
}
