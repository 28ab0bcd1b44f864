// A minimal test runner (no NUnit needed): every public static void method of PieTests whose
// name starts with "Test" runs in order; the last line is "N passed, M failed" and the exit
// status is non-zero on any failure. Optional arguments select tests by substring.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Threading;

namespace Pie.Tests
{
    public class AssertionException : Exception
    {
        public AssertionException(string message) : base(message) { }
    }

    public static class Assert
    {
        public static void True(bool condition, string what)
        {
            if (!condition) throw new AssertionException(what);
        }

        public static void Equal<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
                throw new AssertionException(what + ": expected <" + expected + ">, got <" + actual + ">");
        }

        /// <summary>Runs <paramref name="action"/> and returns the exception of type E it must throw.</summary>
        public static E Throws<E>(Action action, string what) where E : Exception
        {
            try
            {
                action();
            }
            catch (E e)
            {
                return e;
            }
            catch (AggregateException ae)
            {
                var inner = ae.Flatten().InnerExceptions.OfType<E>().FirstOrDefault();
                if (inner != null) return inner;
                throw new AssertionException(what + ": expected " + typeof(E).Name + ", got " + ae);
            }
            catch (Exception e)
            {
                throw new AssertionException(what + ": expected " + typeof(E).Name + ", got " + e.GetType().Name + ": " + e.Message);
            }
            throw new AssertionException(what + ": expected " + typeof(E).Name + ", nothing was thrown");
        }

        public static PieException ThrowsPie(PieStatus status, Action action, string what)
        {
            var e = Throws<PieException>(action, what);
            Equal(status, e.Status, what + " (status; message: " + e.Message + ")");
            return e;
        }
    }

    /// <summary>A pie-sim process on a free port; killed on Dispose.</summary>
    public sealed class Sim : IDisposable
    {
        readonly Process process;
        public string Url { get; private set; }
        public string InternalToken { get; private set; }

        public static string Binary
        {
            get
            {
                string path = Environment.GetEnvironmentVariable("PIE_SIM");
                if (string.IsNullOrEmpty(path)) throw new InvalidOperationException("set PIE_SIM to the pie-sim binary");
                return path;
            }
        }

        public Sim(params string[] extraArgs)
        {
            var psi = new ProcessStartInfo(Binary, "--listen 127.0.0.1:0 " + string.Join(" ", extraArgs.Select(Quote)))
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = false,
            };
            process = Process.Start(psi);
            string first = process.StandardOutput.ReadLine();
            if (first == null || !first.StartsWith("listening on "))
                throw new InvalidOperationException("pie-sim did not start: " + first);
            Url = first.Substring("listening on ".Length).Trim();
            string second = process.StandardOutput.ReadLine();
            if (second != null && second.StartsWith("internal token "))
                InternalToken = second.Substring("internal token ".Length).Trim();
        }

        public void Kill()
        {
            if (!process.HasExited)
            {
                process.Kill();
                process.WaitForExit(5000);
            }
        }

        public void Dispose()
        {
            Kill();
            process.Dispose();
        }

        internal static string Quote(string s)
        {
            return "'" + s.Replace("'", "'\\''") + "'";
        }

        /// <summary>`pie-sim make-program STEP...`: a program whose instances run the script.</summary>
        public static byte[] MakeProgram(params string[] steps)
        {
            var psi = new ProcessStartInfo(Binary, "make-program " + string.Join(" ", steps.Select(Quote)))
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
            };
            using (var p = Process.Start(psi))
            using (var ms = new MemoryStream())
            {
                p.StandardOutput.BaseStream.CopyTo(ms);
                p.WaitForExit();
                if (p.ExitCode != 0) throw new InvalidOperationException("make-program failed");
                return ms.ToArray();
            }
        }

        /// <summary>Runs a command, returns its exit code (stdout/stderr inherited).</summary>
        public static int Run(string file, string args)
        {
            using (var p = Process.Start(new ProcessStartInfo(file, args) { UseShellExecute = false }))
            {
                p.WaitForExit();
                return p.ExitCode;
            }
        }
    }

    public static class Runner
    {
        public static int Main(string[] args)
        {
            var tests = typeof(PieTests).GetMethods(BindingFlags.Public | BindingFlags.Static)
                .Where(m => m.Name.StartsWith("Test") && m.GetParameters().Length == 0)
                .OrderBy(m => m.MetadataToken)
                .Where(m => args.Length == 0 || args.Any(a => m.Name.Contains(a)))
                .ToList();
            int passed = 0, failed = 0;
            foreach (var t in tests)
            {
                var sw = Stopwatch.StartNew();
                try
                {
                    t.Invoke(null, null);
                    passed++;
                    Console.WriteLine("ok     {0} ({1} ms)", t.Name, sw.ElapsedMilliseconds);
                }
                catch (TargetInvocationException e)
                {
                    failed++;
                    Console.WriteLine("FAILED {0} ({1} ms): {2}", t.Name, sw.ElapsedMilliseconds, e.InnerException);
                }
                Console.Out.Flush();
            }
            var cleanup = typeof(PieTests).GetMethod("Cleanup", BindingFlags.Public | BindingFlags.Static);
            if (cleanup != null) cleanup.Invoke(null, null);
            Console.WriteLine("{0} passed, {1} failed", passed, failed);
            return failed == 0 ? 0 : 1;
        }
    }
}
