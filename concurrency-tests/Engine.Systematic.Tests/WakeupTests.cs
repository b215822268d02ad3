using Engine.Sync;

namespace Engine.Systematic.Tests;

/// <summary>
/// A thread waiting in <see cref="Wait.Until(Func{bool}, string, int)"/> may run as soon as a write makes its condition
/// true: at the very next decision, even when the writer's next operation writes nothing. (Found by the Coyote
/// backend's cross-check: the built-in scheduler re-evaluated conditions only when the operation announced next was a
/// write, so the interleaving below was out of its reach while Coyote explored it.)
/// </summary>
public sealed class WakeupTests
{
    [Fact]
    public void AWaiterCanRunBetweenTheWriteThatWakesItAndTheWritersNextRead()
    {
        // T1 waits for flag, then writes z. T0 sets flag, then reads z. When T1 was already waiting at the write, T0
        // reads 1 only if T1 runs between T0's two operations, and the second is a read: only the write of flag can
        // have enabled T1. Whether T1 was waiting is seen through its condition having been found false (a record kept
        // for the test, outside the protocol).
        var outcomes = new HashSet<(bool Waiting, int Read)>();
        var report = TestingEngine.Run(Configuration.Create().WithDfsStrategy(3).WithTestingIterations(100_000), () =>
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
        });

        Assert.True(report.Exhausted);
        Assert.Equal(0, report.BugsFound);
        Assert.Contains((true, 0), outcomes);
        Assert.Contains((true, 1), outcomes);
    }
}
