// Task-based async over libpie's `_async` functions: the PieOp gets a completion callback
// (pie_op_set_callback) whose user_data is a GCHandle to a PendingOp; the callback takes the
// result out of the op on libpie's callback thread, frees the op and completes the Task.
// Continuations never run on libpie's thread (RunContinuationsAsynchronously): in Unity, an
// `await` resumes on the main thread through Unity's SynchronizationContext.
using System;
using System.Threading;
using System.Threading.Tasks;

namespace Pie.Interop
{
    /// <summary>Turns a finished operation (status + handle) into a result, or throws.</summary>
    internal delegate T OpResult<T>(OpHandle op, PieStatus status);

    internal sealed class PendingOp<T> : IOpSink
    {
        readonly TaskCompletionSource<T> tcs =
            new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly OpHandle op;
        readonly OpResult<T> result;
        IntPtr extraPin;                       // e.g. the progress sink of an upload
        CancellationTokenRegistration cancelRegistration;

        PendingOp(OpHandle op, OpResult<T> result, IntPtr extraPin)
        {
            this.op = op;
            this.result = result;
            this.extraPin = extraPin;
        }

        /// <summary>
        /// Starts watching <paramref name="rawOp"/> (just returned by an `_async` call, now owned
        /// here). <paramref name="extraPin"/> is released once the operation has finished.
        /// </summary>
        internal static Task<T> Start(IntPtr rawOp, OpResult<T> result, CancellationToken token, IntPtr extraPin)
        {
            var opHandle = Handles.Wrap<OpHandle>(rawOp);
            var pending = new PendingOp<T>(opHandle, result, extraPin);
            IntPtr self = Callbacks.Pin(pending);
            IntPtr err;
            PieStatus st = Native.pie_op_set_callback(opHandle, Callbacks.Op, self, Callbacks.Drop, out err);
            if (st != PieStatus.Ok)
            {
                Callbacks.Unpin(self);
                opHandle.Dispose();                  // cancels the operation
                // extraPin is left pinned: the cancelled upload could still report progress.
                throw PieException.FromError(st, err);
            }
            if (token.CanBeCanceled)
                pending.cancelRegistration = token.Register(pending.Cancel);
            return pending.tcs.Task;
        }

        void Cancel()
        {
            try
            {
                IntPtr err;
                if (!op.IsClosed && Native.pie_op_cancel(op, out err) != PieStatus.Ok && err != IntPtr.Zero)
                    Native.pie_error_free(err);
            }
            catch (ObjectDisposedException)
            {
                // Finished and freed meanwhile: nothing to cancel.
            }
        }

        public void OnComplete(PieStatus status)
        {
            try
            {
                if (status == PieStatus.Cancelled)
                {
                    tcs.TrySetCanceled();
                    return;
                }
                T value = result(op, status);
                if (!tcs.TrySetResult(value))
                {
                    var d = value as IDisposable;
                    if (d != null) d.Dispose();
                }
            }
            catch (Exception e)
            {
                tcs.TrySetException(e);
            }
            finally
            {
                cancelRegistration.Dispose();
                op.Dispose();                        // pie_op_free from its own callback: allowed
            }
        }

        public void OnDropped()
        {
            Callbacks.Unpin(extraPin);
            extraPin = IntPtr.Zero;
            // Dropped without a completion call (cannot happen while the op is owned here, but
            // never leave a Task hanging).
            tcs.TrySetException(new PieException(PieStatus.Internal, "the operation was released before it finished"));
        }

        /// <summary>Throws the operation's failure if <paramref name="status"/> is not Ok.</summary>
        internal static void ThrowIfFailed(OpHandle op, PieStatus status)
        {
            if (status == PieStatus.Ok) return;
            IntPtr err;
            PieStatus s = Native.pie_op_error(op, out err);
            throw PieException.FromError(s == PieStatus.Ok ? status : s, err);
        }
    }

    internal static class Ops
    {
        internal static readonly OpResult<bool> NoValue = (op, status) =>
        {
            PendingOp<bool>.ThrowIfFailed(op, status);
            return true;
        };

        internal static readonly OpResult<string> String = (op, status) =>
        {
            PendingOp<string>.ThrowIfFailed(op, status);
            return Utf8.FromNative(Native.pie_op_result_string(op));
        };

        internal static readonly OpResult<bool> Bool = (op, status) =>
        {
            PendingOp<bool>.ThrowIfFailed(op, status);
            bool value;
            IntPtr err;
            PieException.Check(Native.pie_op_result_bool(op, out value, out err), err);
            return value;
        };
    }
}
