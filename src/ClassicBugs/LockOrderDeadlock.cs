using Engine.Sync;
using Engine.Systematic;

namespace ClassicBugs;

/// <summary>Two threads each need two spinlocks.</summary>
public static class LockOrderDeadlock
{
    /// <summary>One thread takes A then B, the other B then A: each can hold one and wait for the other.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void Buggy() => Run(reverseSecond: true);

    /// <summary>Both take A before B: a global lock order.</summary>
    [SystematicTest]
    public static void Correct() => Run(reverseSecond: false);

    private static void Run(bool reverseSecond)
    {
        var a = new Spinlock();
        var b = new Spinlock();
        var shared = new int[1];
        var other = ControlledThread.Start(() => Transfer(a, b, shared), "a-then-b");
        if (reverseSecond)
        {
            Transfer(b, a, shared);
        }
        else
        {
            Transfer(a, b, shared);
        }

        other.Join();
        Specification.Assert(Atomic.Read(ref shared[0]) == 2, "both critical sections must have run");
    }

    private static void Transfer(Spinlock first, Spinlock second, int[] shared)
    {
        first.Enter();
        second.Enter();
        Atomic.Write(ref shared[0], Atomic.Read(ref shared[0]) + 1);
        second.Exit();
        first.Exit();
    }
}
