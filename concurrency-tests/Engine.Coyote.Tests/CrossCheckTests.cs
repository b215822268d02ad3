using BugZoo;
using Engine.Sync;
using Engine.Systematic;

namespace Engine.Coyote.Tests;

/// <summary>
/// The two schedulers checked against each other: a schedule Coyote finds is followed by the built-in scheduler to the
/// same bug, and an interleaving one reaches the other reaches too. (The first run of this comparison found the
/// built-in scheduler unable to run a waiter right after the write that woke it: docs/coyote.md.)
/// </summary>
public sealed class CrossCheckTests
{
    public static TheoryData<int> Entries => new(BugZooCatalog.All.Select(e => e.Number));

    [Theory]
    [MemberData(nameof(Entries))]
    public void TheBuiltInSchedulerFollowsTheScheduleOfEveryZooBugCoyoteFinds(int number)
    {
        var entry = BugZooCatalog.Get(number.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var found = ZooRunner.FindBug(entry, seed: 0, budget: 1_000, scheduler: new CoyoteScheduler()).FirstBug;
        Assert.NotNull(found);

        var replay = TestingEngine.Replay(found.ReplayString, entry.Buggy);

        Assert.Null(replay.Divergence);
        Assert.Equal(found.Message, Assert.Single(replay.Bugs).Message);
        Assert.Equal(found.Trace.Steps.Select(s => s.Thread), replay.FirstBug!.Trace.Steps.Select(s => s.Thread));
    }

    [Fact]
    public void BothSchedulersLetAWaiterRunRightAfterTheWriteThatWakesIt()
    {
        var builtin = new HashSet<(bool, int)>();
        var exhaustive = TestingEngine.Run(Configuration.Create().WithDfsStrategy(3).WithTestingIterations(100_000), () => WakeUp(builtin));
        Assert.True(exhaustive.Exhausted);
        Assert.Equal(0, exhaustive.BugsFound);

        var coyote = new HashSet<(bool, int)>();
        var sampled = new CoyoteScheduler().Run(Configuration.Create().WithTestingIterations(1_000), () => WakeUp(coyote));
        Assert.Equal(0, sampled.BugsFound);

        foreach (var outcomes in new[] { builtin, coyote })
        {
            Assert.Contains((true, 0), outcomes);
            Assert.Contains((true, 1), outcomes);
        }
    }

    /// <summary>
    /// T1 waits for flag, then writes z; T0 sets flag, then reads z. When T1 was already waiting at the write, T0 reads
    /// 1 only if T1 ran between T0's two operations, and the second is a read: only the write of flag can have enabled
    /// T1. Whether T1 was waiting is seen through its condition having been found false (a record kept for the test,
    /// outside the protocol). Records (waiting, value read).
    /// </summary>
    private static void WakeUp(HashSet<(bool Waiting, int Read)> outcomes)
    {
        var flag = new int[1];
        var z = new int[1];
        var foundFalse = new bool[1];
        var waiter = ControlledThread.Start(() =>
        {
            Wait.Until(() =>
            {
                var set = Volatile.Read(ref flag[0]) == 1;
                foundFalse[0] |= !set;
                return set;
            });
            Atomic.Write(ref z[0], 1);
        });
        var waiting = foundFalse[0];
        Atomic.Write(ref flag[0], 1);
        outcomes.Add((waiting, Atomic.Read(ref z[0])));
        waiter.Join();
    }
}
