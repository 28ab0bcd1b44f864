// The C# binding against pie-sim (PIE_SIM), through the real libpie (LD_LIBRARY_PATH).
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Pie.Tests
{
    public static class PieTests
    {
        static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

        // One simulator (authentication off) shared by the tests that need nothing special.
        static Sim shared;
        static Sim Shared { get { return shared ?? (shared = new Sim()); } }

        /// <summary>Run by the harness after the tests: stops the shared simulator.</summary>
        public static void Cleanup()
        {
            if (shared != null) shared.Dispose();
            shared = null;
        }

        static PieClient Connected(Sim sim)
        {
            var c = PieClient.Connect(sim.Url);
            c.Authenticate("csharp-test");
            return c;
        }

        /// <summary>Calls client.Poll() like a game's frame loop until every instance has ended.</summary>
        static int PollUntilEnded(PieClient client, params PieInstance[] instances)
        {
            var sw = Stopwatch.StartNew();
            int frames = 0;
            while (instances.Any(i => !i.IsEnded))
            {
                client.Poll();
                frames++;
                if (sw.Elapsed > Patience) throw new AssertionException("instances did not end in time");
                Thread.Sleep(1);
            }
            client.Poll();   // the Poll that saw the end has raised Ended; one more is harmless
            return frames;
        }

        static T Await<T>(Task<T> task)
        {
            if (!task.Wait(Patience)) throw new AssertionException("task did not finish in time");
            return task.Result;
        }

        static void Await(Task task)
        {
            if (!task.Wait(Patience)) throw new AssertionException("task did not finish in time");
        }

        // --- library-level ----------------------------------------------------------------------

        public static void TestVersionStatusNamesAndHash()
        {
            Assert.True(!string.IsNullOrEmpty(PieLibrary.Version) && PieLibrary.Version.Contains("."), "version " + PieLibrary.Version);
            Assert.Equal("PIE_STATUS_TIMEOUT", PieLibrary.StatusName(PieStatus.Timeout), "status name");
            Assert.Equal("PIE_STATUS_UNKNOWN", PieLibrary.StatusName((PieStatus)999), "unknown status name");
            // blake3 of the empty input (a published test vector).
            Assert.Equal("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262", PieLibrary.HashBlob(new byte[0]), "hash of nothing");
            Assert.Throws<ArgumentNullException>(() => PieLibrary.HashBlob(null), "HashBlob(null)");
        }

        // --- connecting and authenticating -----------------------------------------------------

        public static void TestConnectFailuresAreExceptionsWithStatus()
        {
            Assert.ThrowsPie(PieStatus.InvalidArgument, () => PieClient.Connect("not a url"), "bad URL");
            // A port nobody listens on (a simulator that was just stopped).
            string url;
            using (var sim = new Sim()) url = sim.Url;
            var e = Assert.ThrowsPie(PieStatus.ConnectionFailed, () => PieClient.Connect(url), "closed port");
            Assert.True(e.Message.Contains("PIE_STATUS_CONNECTION_FAILED") && e.ServerMessage.Length > 0, "message: " + e.Message);
            var t = PieClient.ConnectAsync(url);
            Assert.ThrowsPie(PieStatus.ConnectionFailed, () => t.Wait(Patience), "async closed port");
        }

        public static void TestAuthenticateWithKeyFileAndMemory()
        {
            string dir = Path.Combine(Path.GetTempPath(), "pie-cs-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(dir);
            try
            {
                string key = Path.Combine(dir, "id_ed25519");
                Assert.Equal(0, Sim.Run("ssh-keygen", "-q -t ed25519 -N '' -C cs -f " + key), "ssh-keygen");
                using (var sim = new Sim("--auth-user", "alice", "--auth-key", key + ".pub"))
                {
                    using (var k = PieKey.LoadFile(key))
                    using (var c = PieClient.Connect(sim.Url))
                    {
                        c.Authenticate("alice", k);
                        c.Ping();
                    }
                    using (var k = PieKey.LoadMemory(File.ReadAllBytes(key)))
                    using (var c = Await(PieClient.ConnectAsync(sim.Url)))
                    {
                        Await(c.AuthenticateAsync("alice", k));
                        Await(c.PingAsync());
                    }
                    using (var k = PieKey.LoadFile(key))
                    using (var c = PieClient.Connect(sim.Url))
                    {
                        var e = Assert.ThrowsPie(PieStatus.Auth, () => c.Authenticate("mallory", k), "unknown user");
                        Assert.True(e.ServerMessage.Length > 0, "server's refusal text");
                    }
                    using (var c = PieClient.Connect(sim.Url))
                        Assert.ThrowsPie(PieStatus.Auth, () => c.Authenticate("alice"), "no key on an auth server");
                    using (var c = PieClient.Connect(sim.Url))
                    {
                        c.InternalAuthenticate(sim.InternalToken);
                        c.Ping();
                    }
                }
                Assert.ThrowsPie(PieStatus.Key, () => PieKey.LoadMemory(Encoding.UTF8.GetBytes("not a key")), "garbage key");
                Assert.ThrowsPie(PieStatus.Io, () => PieKey.LoadFile(Path.Combine(dir, "missing")), "missing key file");
            }
            finally
            {
                Directory.Delete(dir, true);
            }
        }

        // --- programs ----------------------------------------------------------------------------

        public static void TestUploadLaunchAndReceive()
        {
            byte[] program = Sim.MakeProgram("stdout hello $1\\n", "stdout h\u00e9llo \u2713 \u4e16\u754c\\n", "complete done $1");
            string expectedHash = PieLibrary.HashBlob(program);
            using (var c = Connected(Shared))
            {
                Assert.True(!c.ProgramExists(expectedHash), "not stored yet");
                var progress = new List<ulong>();
                string hash = c.UploadProgram(program, (sent, total) => { lock (progress) progress.Add(sent); });
                Assert.Equal(expectedHash, hash, "upload hash");
                Assert.True(progress.Count > 0 && progress.Last() == (ulong)program.Length, "final progress call");
                Assert.True(c.ProgramExists(hash) && Await(c.ProgramExistsAsync(hash)), "stored");

                using (var inst = c.LaunchInstance(hash, new[] { "w\u00f6rld" }))
                {
                    Assert.True(inst.Id.Length == 36 && !inst.IsDetached, "id " + inst.Id);
                    var events = new List<PieEvent>();
                    PieEvent ev;
                    while ((ev = inst.Receive(10000)) != null) events.Add(ev);
                    Assert.Equal(PieStatus.StreamEnded, inst.EndStatus, "end status");
                    Assert.Equal("hello w\u00f6rld\n|h\u00e9llo \u2713 \u4e16\u754c\n|done w\u00f6rld",
                                 string.Join("|", events.Select(x => x.Text)), "texts (UTF-8 both ways)");
                    Assert.Equal(PieEventKind.Completed, events.Last().Kind, "last kind");
                    Assert.True(events.Last().IsTerminal, "terminal");
                    Assert.True(!inst.TryReceive(out ev) && ev == null, "nothing after the end");
                }

                // The same through the async forms.
                byte[] second = Sim.MakeProgram("stdout async\\n", "complete ok");
                string h2 = Await(c.UploadProgramAsync(second));
                Assert.Equal(PieLibrary.HashBlob(second), h2, "async upload hash");
                using (var inst = Await(c.LaunchInstanceAsync(h2)))
                {
                    Assert.Equal("async\n", Await(inst.ReceiveAsync(10000)).Text, "first event");
                    Assert.Equal(PieEventKind.Completed, Await(inst.ReceiveAsync(10000)).Kind, "second event");
                    Assert.True(Await(inst.ReceiveAsync(10000)) == null, "ended stream gives null");
                }
                Assert.ThrowsPie(PieStatus.Server, () => c.LaunchInstance(new string('0', 64)), "unknown hash");
                Assert.ThrowsPie(PieStatus.InvalidArgument, () => c.UploadProgram(new byte[] { 1, 2, 3 }), "not a component");
            }
        }

        public static void TestRegistryStreamingThroughPerFramePoll()
        {
            using (var c = Connected(Shared))
            using (var inst = Await(c.LaunchInstanceFromRegistryAsync("text-completion",
                       new[] { "--prompt", "frame loop", "--max-tokens", "200", "--delay-ms", "0" })))
            {
                var text = new StringBuilder();
                string completion = null;
                PieStatus ended = PieStatus.Ok;
                inst.EventReceived += (i, ev) =>
                {
                    if (ev.Kind == PieEventKind.Stdout) text.Append(ev.Text);
                    if (ev.Kind == PieEventKind.Completed) completion = ev.Text;
                };
                inst.Ended += (i, status) => ended = status;
                int frames = PollUntilEnded(c, inst);
                Assert.True(completion != null && completion.Length > 200, "completion text");
                Assert.Equal(completion + "\n", text.ToString(), "streamed text == completion");
                Assert.Equal(PieStatus.StreamEnded, ended, "Ended raised");
                Assert.True(frames >= 1, "frames");
            }
        }

        public static void TestPollBudgetLimitsEventsPerFrame()
        {
            using (var c = Connected(Shared))
            using (var inst = c.LaunchInstanceFromRegistry("flood", new[] { "--count", "500" }))
            {
                int seen = 0;
                inst.EventReceived += (i, ev) => seen++;
                var sw = Stopwatch.StartNew();
                while (seen < 50 && sw.Elapsed < Patience)
                {
                    int n = c.Poll(7);
                    Assert.True(n <= 7, "budget respected: " + n);
                    Thread.Sleep(1);
                }
                PollUntilEnded(c, inst);
                Assert.Equal(501, seen, "every event delivered (500 + Completed)");
            }
        }

        public static void TestChatMessagesBothWays()
        {
            using (var c = Connected(Shared))
            using (var chat = c.LaunchInstanceFromRegistry("chat"))
            {
                chat.Send("hello");
                var ev = chat.Receive(10000);
                Assert.Equal(PieEventKind.Message, ev.Kind, "reply kind");
                Assert.Equal("you said: hello", ev.Text, "reply");
                Await(chat.SendAsync("gr\u00fc\u00df dich \ud83e\udd67"));
                Assert.Equal("you said: gr\u00fc\u00df dich \ud83e\udd67", Await(chat.ReceiveAsync(10000)).Text, "UTF-8 reply");
                chat.Send("bye");
                ev = chat.Receive(10000);
                Assert.Equal(PieEventKind.Completed, ev.Kind, "end kind");
                Assert.Equal("bye", ev.Text, "end text");
            }
        }

        public static void TestBlobsAndDetachedAttach()
        {
            using (var c = Connected(Shared))
            {
                using (var echo = c.LaunchInstanceFromRegistry("blob-echo", new[] { "--count", "1" }))
                {
                    var data = new byte[300 * 1024];
                    new Random(7).NextBytes(data);
                    int progressCalls = 0;
                    Await(echo.UploadBlobAsync(data, (s, t) => Interlocked.Increment(ref progressCalls)));
                    var ev = echo.Receive(10000);
                    Assert.Equal(PieEventKind.Blob, ev.Kind, "kind");
                    Assert.True(ev.Blob.SequenceEqual(data), "blob round trip");
                    Assert.True(progressCalls >= 2, "progress per 256 KiB chunk: " + progressCalls);
                    Assert.Equal(PieEventKind.Completed, echo.Receive(10000).Kind, "completed");
                }
                string id;
                using (var det = c.LaunchInstanceFromRegistry("forever", new[] { "--interval-ms", "20" }, true))
                {
                    id = det.Id;
                    Assert.True(det.IsDetached, "detached");
                    Assert.ThrowsPie(PieStatus.Detached, () => det.Send("x"), "send to detached");
                }
                var listed = Await(c.ListInstancesAsync()).Concat(c.ListInstances()).Where(i => i.Id == id).ToList();
                Assert.True(listed.Count == 2 && listed[0].Status == PieInstanceStatus.Detached, "listed detached");
                Assert.True(listed[0].Arguments.SequenceEqual(new[] { "--interval-ms", "20" }), "listed arguments");
                using (var other = Connected(Shared))
                using (var att = Await(other.AttachInstanceAsync(id)))
                {
                    var tick = att.Receive(10000);
                    Assert.True(tick.Text.StartsWith("tick "), "attached output: " + tick.Text);
                    Await(other.TerminateInstanceAsync(id));
                    PieEvent ev;
                    while ((ev = att.Receive(10000)) != null && !ev.IsTerminal) { }
                    Assert.Equal(PieEventKind.Aborted, ev.Kind, "terminated");
                }
            }
        }

        // --- callbacks ---------------------------------------------------------------------------

        public static void TestEventCallbackAndConnectionCallback()
        {
            int pinnedBefore = PieLibrary.PinnedCallbackTargets;
            var done = new ManualResetEventSlim();
            var lines = new List<string>();
            PieStatus endStatus = PieStatus.Ok;
            int callbackThread = -1;
            var connectionEnded = new ManualResetEventSlim();
            PieStatus connectionStatus = PieStatus.Ok;
            using (var c = Connected(Shared))
            {
                c.SetConnectionCallback((status, message) => { connectionStatus = status; connectionEnded.Set(); });
                using (var inst = c.LaunchInstanceFromRegistry("flood", new[] { "--count", "2000" }))
                {
                    inst.SetCallback(ev =>
                    {
                        callbackThread = Thread.CurrentThread.ManagedThreadId;
                        lock (lines) lines.Add(ev.Text);
                    }, status => { endStatus = status; done.Set(); });
                    Assert.ThrowsPie(PieStatus.Busy, () => { PieEvent e; inst.TryReceive(out e); }, "recv in callback mode");
                    Assert.True(done.Wait(Patience), "stream ended");
                    Assert.Equal(PieStatus.StreamEnded, endStatus, "end status");
                    Assert.True(inst.IsEnded, "IsEnded");
                    Assert.True(callbackThread != Thread.CurrentThread.ManagedThreadId, "runs on libpie's callback thread");
                }
                lock (lines)
                {
                    Assert.Equal(2001, lines.Count, "all events");
                    for (int i = 0; i < 2000; i++) Assert.Equal(i + "\n", lines[i], "event " + i);
                    Assert.Equal("2000", lines[2000], "completed");
                }
                c.Close();
                Assert.True(connectionEnded.Wait(Patience), "connection callback");
                Assert.Equal(PieStatus.ClientClosed, connectionStatus, "closed by us");
                Assert.ThrowsPie(PieStatus.ClientClosed, () => c.Ping(), "calls after Close");
            }
            Assert.Equal(pinnedBefore, PieLibrary.PinnedCallbackTargets, "every GCHandle released");
        }

        public static void TestCallbackExceptionsAreCaughtAndReported()
        {
            var reported = new List<Exception>();
            Action<Exception> handler = e => { lock (reported) reported.Add(e); };
            PieLibrary.CallbackException += handler;
            try
            {
                var done = new ManualResetEventSlim();
                using (var c = Connected(Shared))
                using (var inst = c.LaunchInstanceFromRegistry("flood", new[] { "--count", "3" }))
                {
                    inst.SetCallback(ev => { throw new InvalidOperationException("thrown by the game"); }, s => done.Set());
                    Assert.True(done.Wait(Patience), "stream ended despite the exceptions");
                }
                lock (reported)
                    Assert.True(reported.Count == 4 && reported.All(e => e.Message == "thrown by the game"), "reported " + reported.Count);
            }
            finally
            {
                PieLibrary.CallbackException -= handler;
            }
        }

        public static void TestAsyncCancellation()
        {
            using (var c = Connected(Shared))
            using (var quiet = c.LaunchInstanceFromRegistry("forever", new[] { "--interval-ms", "100000" }))
            {
                var cts = new CancellationTokenSource();
                var t = quiet.ReceiveAsync(-1, cts.Token);
                Thread.Sleep(50);
                Assert.True(!t.IsCompleted, "waiting");
                cts.Cancel();
                Assert.Throws<TaskCanceledException>(() => t.Wait(Patience), "cancelled");
                Assert.True(Await(quiet.ReceiveAsync(0)) == null, "a zero timeout gives null");
                Await(quiet.TerminateAsync());
                Assert.Equal(PieEventKind.Aborted, quiet.Receive(10000).Kind, "terminated");
            }
        }

        // --- disconnects ---------------------------------------------------------------------------

        public static void TestServerGoingAwayEndsEverything()
        {
            var sim = new Sim();
            using (var c = Connected(sim))
            using (var polled = c.LaunchInstanceFromRegistry("forever", new[] { "--interval-ms", "10" }))
            using (var pushed = c.LaunchInstanceFromRegistry("forever", new[] { "--interval-ms", "10" }))
            {
                var connectionEnded = new ManualResetEventSlim();
                PieStatus connectionStatus = PieStatus.Ok;
                c.SetConnectionCallback((status, message) => { connectionStatus = status; connectionEnded.Set(); });
                var pushedEnded = new ManualResetEventSlim();
                PieStatus pushedStatus = PieStatus.Ok;
                pushed.SetCallback(ev => { }, s => { pushedStatus = s; pushedEnded.Set(); });
                Assert.True(polled.Receive(10000) != null, "streaming before the kill");
                var pending = polled.ReceiveAsync(-1);
                PieStatus polledEnd = PieStatus.Ok;
                polled.Ended += (i, s) => polledEnd = s;      // drained by Poll from now on
                sim.Kill();
                Assert.True(connectionEnded.Wait(Patience), "connection callback");
                Assert.Equal(PieStatus.ConnectionClosed, connectionStatus, "connection status");
                Assert.True(pushedEnded.Wait(Patience), "callback stream ended");
                Assert.Equal(PieStatus.ConnectionClosed, pushedStatus, "callback end status");
                Await(pending);                     // an event queued before the kill, or null
                PollUntilEnded(c, polled);
                Assert.Equal(PieStatus.ConnectionClosed, polled.EndStatus, "polled end status");
                Assert.Equal(PieStatus.ConnectionClosed, polledEnd, "Ended raised by Poll");
                Assert.ThrowsPie(PieStatus.ConnectionClosed, () => c.Ping(), "ping after the end");
                Assert.ThrowsPie(PieStatus.ConnectionClosed, () => Await(c.PingAsync()), "async ping after the end");
            }
            sim.Dispose();
        }

        // --- argument validation: never a native crash -------------------------------------------

        public static void TestBadArgumentsAreManagedExceptions()
        {
            Assert.Throws<ArgumentNullException>(() => PieClient.Connect(null), "Connect(null)");
            Assert.Throws<ArgumentNullException>(() => PieClient.ConnectAsync(null), "ConnectAsync(null)");
            Assert.Throws<ArgumentNullException>(() => PieKey.LoadFile(null), "LoadFile(null)");
            Assert.Throws<ArgumentNullException>(() => PieKey.LoadMemory(null), "LoadMemory(null)");
            Assert.Throws<ArgumentException>(() => PieClient.Connect("ws://x\ud800"), "unpaired surrogate");
            Assert.ThrowsPie(PieStatus.InvalidArgument,
                () => new PieConnectOptions().SetEventBatchWindowMicroseconds(2000000), "a 2 s batching window");
            using (var c = Connected(Shared))
            using (var inst = c.LaunchInstanceFromRegistry("chat"))
            {
                Assert.Throws<ArgumentNullException>(() => c.Authenticate(null), "Authenticate(null)");
                Assert.Throws<ArgumentNullException>(() => c.InternalAuthenticate(null), "InternalAuthenticate(null)");
                Assert.Throws<ArgumentNullException>(() => c.Query(null, "x"), "Query(null, _)");
                Assert.Throws<ArgumentNullException>(() => c.Query("x", null), "Query(_, null)");
                Assert.Throws<ArgumentNullException>(() => c.ProgramExists(null), "ProgramExists(null)");
                Assert.Throws<ArgumentNullException>(() => c.UploadProgram(null), "UploadProgram(null)");
                Assert.Throws<ArgumentNullException>(() => c.UploadProgramAsync(null), "UploadProgramAsync(null)");
                Assert.Throws<ArgumentNullException>(() => c.LaunchInstance(null), "LaunchInstance(null)");
                Assert.Throws<ArgumentNullException>(() => c.LaunchInstanceFromRegistryAsync(null), "LaunchFromRegistryAsync(null)");
                Assert.Throws<ArgumentException>(() => c.LaunchInstanceFromRegistry("echo", new[] { "a", null }), "null argument");
                Assert.Throws<ArgumentNullException>(() => c.AttachInstance(null), "AttachInstance(null)");
                Assert.Throws<ArgumentNullException>(() => c.TerminateInstance(null), "TerminateInstance(null)");
                Assert.Throws<ArgumentNullException>(() => c.SetConnectionCallback(null), "SetConnectionCallback(null)");
                Assert.Throws<ArgumentNullException>(() => inst.Send(null), "Send(null)");
                Assert.Throws<ArgumentNullException>(() => inst.UploadBlob(null), "UploadBlob(null)");
                Assert.Throws<ArgumentNullException>(() => inst.SetCallback(null), "SetCallback(null)");
                Assert.Throws<ArgumentOutOfRangeException>(() => inst.Receive(-2), "Receive(-2)");
                Assert.Throws<ArgumentOutOfRangeException>(() => inst.ReceiveAsync(-5), "ReceiveAsync(-5)");
                Assert.Throws<ArgumentOutOfRangeException>(() => c.Poll(-1), "Poll(-1)");
                Assert.ThrowsPie(PieStatus.Server, () => c.TerminateInstance("not-a-uuid"), "server refusal");
            }

            var key = PieKey.LoadMemory(File.ReadAllBytes(MakeKey()));
            key.Dispose();
            key.Dispose();                                      // idempotent
            var options = new PieConnectOptions().SetRequestTimeoutMs(5000);
            Assert.ThrowsPie(PieStatus.InvalidArgument, () => options.SetConnectTimeoutMs(0), "zero timeout");
            options.Dispose();
            Assert.Throws<ObjectDisposedException>(() => options.SetTcpQuickack(true), "disposed options");
            Assert.Throws<ObjectDisposedException>(() => PieClient.Connect(Shared.Url, options), "connect with disposed options");

            var client = Connected(Shared);
            var instance = client.LaunchInstanceFromRegistry("chat");
            Assert.Throws<ObjectDisposedException>(() => client.Authenticate("me", key), "disposed key");
            client.Dispose();
            client.Dispose();                                   // idempotent
            // The instance outlives its client: calls fail with ClientClosed, no crash.
            Assert.ThrowsPie(PieStatus.ClientClosed, () => instance.Send("hi"), "send after client Dispose");
            Assert.Throws<ObjectDisposedException>(() => client.Ping(), "Ping");
            Assert.Throws<ObjectDisposedException>(() => client.PingAsync(), "PingAsync");
            Assert.Throws<ObjectDisposedException>(() => client.Poll(), "Poll");
            Assert.Throws<ObjectDisposedException>(() => client.Close(), "Close");
            Assert.Throws<ObjectDisposedException>(() => { var fd = client.EventFd; }, "EventFd");
            Assert.Throws<ObjectDisposedException>(() => client.LaunchInstanceFromRegistry("chat"), "Launch");
            Assert.Throws<ObjectDisposedException>(() => client.ListInstances(), "ListInstances");
            Assert.Throws<ObjectDisposedException>(() => client.UploadProgram(new byte[1]), "UploadProgram");
            instance.Dispose();
            Assert.Throws<ObjectDisposedException>(() => instance.Send("x"), "Send on disposed");
            Assert.Throws<ObjectDisposedException>(() => instance.Receive(0), "Receive on disposed");
            Assert.Throws<ObjectDisposedException>(() => { PieEvent e; instance.TryReceive(out e); }, "TryReceive on disposed");
            Assert.Throws<ObjectDisposedException>(() => instance.ReceiveAsync(), "ReceiveAsync on disposed");
            Assert.Throws<ObjectDisposedException>(() => instance.SetCallback(e => { }), "SetCallback on disposed");
            Assert.Throws<ObjectDisposedException>(() => instance.Terminate(), "Terminate on disposed");
            Assert.Throws<ObjectDisposedException>(() => instance.UploadBlob(new byte[1]), "UploadBlob on disposed");
        }

        static string keyPath;

        static string MakeKey()
        {
            if (keyPath != null) return keyPath;
            string dir = Path.Combine(Path.GetTempPath(), "pie-cs-key-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(dir);
            keyPath = Path.Combine(dir, "id_ed25519");
            Assert.Equal(0, Sim.Run("ssh-keygen", "-q -t ed25519 -N '' -C cs -f " + keyPath), "ssh-keygen");
            return keyPath;
        }

        // --- garbage collection while events stream ------------------------------------------------

        /// <summary>
        /// Three floods stream at once — one to a callback whose delegates nothing else
        /// references, one drained by Poll, one by a chain of ReceiveAsync — while another thread
        /// forces full collections and finalizers non-stop and abandons clients to their
        /// finalizers. Every event must arrive, in order, and every GCHandle be released.
        /// </summary>
        public static void TestStressGarbageCollectionWhileStreaming()
        {
            const int Count = 20000;
            int pinnedBefore = PieLibrary.PinnedCallbackTargets;
            var stop = new ManualResetEventSlim();
            int collections = 0;
            var collector = new Thread(() =>
            {
                while (!stop.IsSet)
                {
                    var garbage = new List<byte[]>();
                    for (int i = 0; i < 100; i++) garbage.Add(new byte[1024]);
                    // Abandoned without Dispose: the SafeHandle finalizer frees it.
                    PieClient.Connect(Shared.Url);
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                    Interlocked.Increment(ref collections);
                }
            });
            collector.Start();
            try
            {
                using (var c = Connected(Shared))
                {
                    var args = new[] { "--count", Count.ToString() };
                    var pushed = c.LaunchInstanceFromRegistry("flood", args);
                    var polled = c.LaunchInstanceFromRegistry("flood", args);
                    var awaited = c.LaunchInstanceFromRegistry("flood", args);

                    var pushedDone = new ManualResetEventSlim();
                    var pushedTexts = new List<string>();
                    StartCallbackConsumer(pushed, pushedTexts, pushedDone);   // delegates only reachable via libpie

                    var polledTexts = new List<string>();
                    polled.EventReceived += (i, ev) => polledTexts.Add(ev.Text);

                    var awaitedTexts = new List<string>();
                    Task chain = ReceiveAll(awaited, awaitedTexts);

                    var sw = Stopwatch.StartNew();
                    while (!(polled.IsEnded && pushedDone.IsSet && chain.IsCompleted))
                    {
                        c.Poll(1000);
                        if (sw.Elapsed > TimeSpan.FromSeconds(120)) throw new AssertionException("streams did not end");
                        Thread.Sleep(1);
                    }
                    Await(chain);
                    CheckFlood("callback", pushedTexts, Count);
                    CheckFlood("poll", polledTexts, Count);
                    CheckFlood("async", awaitedTexts, Count);
                    pushed.Dispose();
                    polled.Dispose();
                    awaited.Dispose();
                }
            }
            finally
            {
                stop.Set();
                collector.Join();
            }
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Assert.True(collections >= 3, "collections during the run: " + collections);
            Assert.Equal(pinnedBefore, PieLibrary.PinnedCallbackTargets, "every GCHandle released");
            Console.WriteLine("       {0} forced collections while 3 x {1} events streamed", collections, Count);
        }

        static void StartCallbackConsumer(PieInstance inst, List<string> texts, ManualResetEventSlim done)
        {
            inst.SetCallback(ev => { lock (texts) texts.Add(ev.Text); }, status => done.Set());
        }

        static async Task ReceiveAll(PieInstance inst, List<string> texts)
        {
            PieEvent ev;
            while ((ev = await inst.ReceiveAsync(30000).ConfigureAwait(false)) != null)
                lock (texts) texts.Add(ev.Text);
        }

        static void CheckFlood(string how, List<string> texts, int count)
        {
            lock (texts)
            {
                Assert.Equal(count + 1, texts.Count, how + ": event count");
                for (int i = 0; i < count; i++)
                    if (texts[i] != i + "\n") throw new AssertionException(how + ": event " + i + " is " + texts[i]);
                Assert.Equal(count.ToString(), texts[count], how + ": completion");
            }
        }
    }
}
