using Engine.Sync;

namespace Engine.Systematic.Tests;

/// <summary>
/// The Engine.Sync primitives do their job on real threads (ControlledThread outside the tester is a real OS thread)
/// and under the tester, where each test also shows that the interesting overlap actually happened.
/// </summary>
public sealed class SyncPrimitiveTests
{
    [Fact]
    public void HookIsEnabledInTheTestProcess() => Assert.True(SchedulingHook.IsEnabled);

    [Fact]
    public void SpinlockExcludesOnRealThreads()
    {
        const int PerThread = 200_000;
        var gate = new Spinlock();
        var plain = new int[1];
        var threads = Enumerable.Range(0, 2).Select(_ => ControlledThread.Start(() =>
        {
            for (var i = 0; i < PerThread; i++)
            {
                gate.Enter();
                plain[0]++;
                gate.Exit();
            }
        })).ToArray();
        foreach (var thread in threads)
        {
            thread.Join();
        }

        Assert.Equal(2 * PerThread, plain[0]);
        Assert.False(gate.IsHeld);
    }

    [Fact]
    public void SpinlockExcludesUnderTheTesterAndContentionIsExplored()
    {
        var contended = 0;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(2_000), () =>
        {
            var gate = new Spinlock();
            var inside = new int[1];
            void Critical()
            {
                if (!gate.TryEnter())
                {
                    Interlocked.Increment(ref contended);
                    gate.Enter();
                }

                Specification.Assert(Atomic.Increment(ref inside[0]) == 1, "two threads inside the critical section");
                SchedulingPoint.Interleave();
                Atomic.Decrement(ref inside[0]);
                gate.Exit();
            }

            var other = ControlledThread.Start(Critical);
            Critical();
            other.Join();
        });

        Assert.Equal(0, report.BugsFound);
        Assert.True(contended > 0, "no iteration ever found the lock held: the test proved nothing");
    }

    [Fact]
    public void ABrokenLockIsCaughtUnderTheTester()
    {
        // The same test with a "lock" that checks and then sets non-atomically: the tester must find two threads inside.
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(1_000).WithTraceFiles(false), () =>
        {
            var held = new int[1];
            var inside = new int[1];
            void Critical()
            {
                Wait.Until(held, static h => Atomic.Read(ref h[0]) == 0);
                Atomic.Write(ref held[0], 1);
                Specification.Assert(Atomic.Increment(ref inside[0]) == 1, "two threads inside the critical section");
                Atomic.Decrement(ref inside[0]);
                Atomic.Write(ref held[0], 0);
            }

            var other = ControlledThread.Start(Critical);
            Critical();
            other.Join();
        });

        Assert.Equal(1, report.BugsFound);
        Assert.Equal(BugKind.Assertion, report.FirstBug!.Kind);
    }

    [Fact]
    public void ReaderWriterSemaphoreAdmitsReadersTogetherAndWritersAlone()
    {
        var maxReaders = 0;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(3_000), () =>
        {
            var semaphore = new ReaderWriterSemaphore();
            var counts = new int[2]; // [0] readers inside, [1] writers inside
            void Read()
            {
                semaphore.EnterRead();
                var readers = Atomic.Increment(ref counts[0]);
                InterlockedMax(ref maxReaders, readers);
                Specification.Assert(Atomic.Read(ref counts[1]) == 0, "a reader is inside with a writer");
                SchedulingPoint.Interleave();
                Atomic.Decrement(ref counts[0]);
                semaphore.ExitRead();
            }

            void Write()
            {
                semaphore.EnterWrite();
                Specification.Assert(Atomic.Increment(ref counts[1]) == 1, "two writers inside");
                Specification.Assert(Atomic.Read(ref counts[0]) == 0, "a writer is inside with a reader");
                SchedulingPoint.Interleave();
                Atomic.Decrement(ref counts[1]);
                semaphore.ExitWrite();
            }

            var threads = new[] { ControlledThread.Start(Read), ControlledThread.Start(Read), ControlledThread.Start(Write) };
            Write();
            foreach (var thread in threads)
            {
                thread.Join();
            }

            Specification.Assert(semaphore.State == 0, "the semaphore is left held");
        });

        Assert.True(report.BugsFound == 0, report.ToString());
        Assert.True(maxReaders >= 2, "two readers were never inside together: the test proved nothing");
    }

    [Fact]
    public void ReaderWriterSemaphoreRejectsUnbalancedReleasesAndStaysUsable()
    {
        var semaphore = new ReaderWriterSemaphore();
        Assert.Throws<SynchronizationLockException>(() => semaphore.ExitRead());
        Assert.Throws<SynchronizationLockException>(() => semaphore.ExitWrite());
        Assert.Throws<SynchronizationLockException>(() => semaphore.DowngradeWrite());
        Assert.Equal(0, semaphore.State);

        semaphore.EnterWrite();
        Assert.False(semaphore.TryEnterRead());
        semaphore.DowngradeWrite();
        Assert.True(semaphore.IsReadHeld);
        Assert.True(semaphore.TryEnterRead());
        Assert.False(semaphore.TryEnterWrite());
        semaphore.ExitRead();
        semaphore.ExitRead();
        Assert.True(semaphore.TryEnterWrite());
        semaphore.ExitWrite();
        Assert.Equal(0, semaphore.State);
    }

    [Fact]
    public void SequenceCounterReadersNeverKeepATornPairOnRealThreads()
    {
        const int Reads = 20_000;
        var pair = new long[2];
        var sequence = new SequenceCounter();
        var stop = new int[1];
        var writer = ControlledThread.Start(() =>
        {
            for (long v = 1; Atomic.Read(ref stop[0]) == 0; v++)
            {
                sequence.WriteBegin();
                Atomic.Write(ref pair[0], v);
                Atomic.Write(ref pair[1], v);
                sequence.WriteEnd();
            }
        });

        // Read until enough consistent snapshots were taken while the writer was demonstrably running.
        long reads = 0, torn = 0, lastSeen = 0;
        var deadline = Environment.TickCount64 + 10_000;
        while ((reads < Reads || lastSeen < 1_000) && Environment.TickCount64 < deadline)
        {
            var start = sequence.ReadBegin();
            var low = Atomic.Read(ref pair[0]);
            var high = Atomic.Read(ref pair[1]);
            if (sequence.ReadRetry(start))
            {
                continue;
            }

            reads++;
            lastSeen = low;
            if (low != high)
            {
                torn++;
            }
        }

        Atomic.Write(ref stop[0], 1);
        writer.Join();
        Assert.Equal(0, torn);
        Assert.True(reads >= Reads, $"only {reads} consistent reads");
        Assert.True(lastSeen >= 1_000, "the writer never got going: the reads proved nothing");
        Assert.Equal(0, sequence.Value & 1);
        Assert.True(sequence.TryReadBegin(out var now) && now == sequence.Value);
    }

    [Fact]
    public void WaitUntilReturnsOnRealThreadsOnceTheConditionHolds()
    {
        var flag = new int[1];
        var setter = ControlledThread.Start(() =>
        {
            Thread.Sleep(20);
            Atomic.Write(ref flag[0], 1);
        });
        Wait.Until(flag, static f => Atomic.Read(ref f[0]) == 1);
        setter.Join();
        Assert.Equal(1, flag[0]);
    }

    private static void InterlockedMax(ref int location, int value)
    {
        int seen;
        while (value > (seen = Volatile.Read(ref location)) && Interlocked.CompareExchange(ref location, value, seen) != seen)
        {
        }
    }
}
