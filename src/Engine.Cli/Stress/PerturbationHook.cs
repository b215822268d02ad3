using Engine.Sync;

namespace Engine.Cli.Stress;

/// <summary>What <see cref="PerturbationHook"/> does at one scheduling point.</summary>
internal enum Perturbation : byte
{
    /// <summary>Nothing: the operation goes ahead at once.</summary>
    None,

    /// <summary>Spin for <see cref="PerturbationChoice.Amount"/> iterations of <see cref="Thread.SpinWait(int)"/> (a few microseconds).</summary>
    Spin,

    /// <summary><see cref="Thread.Yield"/>: give the core to another ready thread, if any.</summary>
    Yield,

    /// <summary>Sleep <see cref="PerturbationChoice.Amount"/> ms (0 or 1): the thread is off its core for a scheduler tick.</summary>
    Sleep,
}

/// <summary>One decision of the perturbation: what, and how much.</summary>
internal readonly record struct PerturbationChoice(Perturbation What, int Amount);

/// <summary>
/// Noise injection for <c>engine stress</c> (the technique of noise-making testers such as IBM's ConTest): at every
/// <c>Engine.Sync</c> scheduling point of a worker thread (before each atomic, lock operation and wait), a seeded
/// random choice sometimes delays the thread by a short spin, a yield or, rarely, a sleep of 0–1 ms, so that a thread
/// inside a protocol window a few instructions wide is overtaken by another CPU far more often than on undisturbed
/// real threads.
/// <para>
/// Reproducible in what it chooses: each worker thread draws from its own SplitMix64 stream, seeded by the run's seed
/// and the thread's index (<see cref="Attach"/>), one draw per scheduling point; the same seed gives the same sequence
/// of choices for the same sequence of points (<see cref="Choices"/>). The timing they cause, and so the interleaving,
/// is the OS's.
/// </para>
/// <para>
/// Never a deadlock, and never a long stall of others: a thread that has announced a lock acquire and no release yet
/// (an approximation: a try-acquire is not counted, since its outcome is unknown here) only spins or yields, never
/// sleeps, since others may be spinning on that lock or on an IPI it must answer. <see cref="WaitUntil"/> returns
/// false, so every wait is the caller's real wait. Threads never attached (the main thread's set-up and final checks)
/// are not perturbed.
/// </para>
/// <para>
/// Cheap when off: <c>engine stress</c> without perturbation never enables the scheduling hook (Program.cs), so the
/// JIT folds every hook check away and this class is not even loaded.
/// </para>
/// </summary>
internal sealed class PerturbationHook : ISchedulingHook
{
    /// <summary>One point in this many spins (1/32).</summary>
    public const int SpinOneIn = 32;

    /// <summary>One point in this many yields (1/256).</summary>
    public const int YieldOneIn = 256;

    /// <summary>One point in this many sleeps (1/16,384), outside lock-held regions only.</summary>
    public const int SleepOneIn = 16_384;

    /// <summary>Draws at each point of a thread perturbed at its lock points only (<see cref="Attach"/>): about eight times the noise of a worker's point.</summary>
    public const int LockPointDraws = 8;

    /// <summary>The longest spin, in <see cref="Thread.SpinWait(int)"/> iterations: a few microseconds, the length of a protocol window many times over.</summary>
    public const int MaxSpin = 400;

    [ThreadStatic]
    private static ThreadState? t_state;

    private volatile bool _active = true;

    /// <summary>Stops perturbing (the run is over; the hook may stay installed in a process that runs other commands).</summary>
    public void Deactivate() => _active = false;

    /// <summary>How the run's header describes it.</summary>
    public static string Describe(int seed) =>
        $"perturbation on (seed {seed}: at each Engine.Sync point spin up to {MaxSpin} 1/{SpinOneIn}, yield 1/{YieldOneIn}, sleep 0-1 ms 1/{SleepOneIn:N0} outside locks)";

    /// <summary>
    /// Makes the calling thread a perturbed one, drawing from the stream of (<paramref name="seed"/>, <paramref name="index"/>).
    /// With <paramref name="lockPointsOnly"/>, only its lock operations and explicit interleaving points are perturbed,
    /// not its atomics: for a thread whose loop is mostly atomics that need no noise (kswapd's clock hand moves by one
    /// atomic add per frame, and noise at each would slow its sweeps a hundredfold), while the protocol windows it
    /// opens lie between lock operations.
    /// </summary>
    public static void Attach(int seed, int index, bool lockPointsOnly = false) => t_state = new ThreadState(StreamSeed(seed, index)) { LockPointsOnly = lockPointsOnly };

    /// <summary>The calling thread is perturbed no more.</summary>
    public static void Detach() => t_state = null;

    /// <summary>The first <paramref name="count"/> choices of thread <paramref name="index"/> for <paramref name="seed"/>, at points outside locks: what a test of reproducibility compares.</summary>
    public static IReadOnlyList<PerturbationChoice> Choices(int seed, int index, int count)
    {
        var state = StreamSeed(seed, index);
        var choices = new PerturbationChoice[count];
        for (var i = 0; i < count; i++)
        {
            choices[i] = Decide(ref state, insideLock: false);
        }

        return choices;
    }

    /// <summary>
    /// The decision at one point: one draw of the stream, split into a choice and an amount. Inside a lock-held region a
    /// sleep becomes a yield.
    /// </summary>
    public static PerturbationChoice Decide(ref ulong state, bool insideLock)
    {
        var draw = Next(ref state);
        var roll = (int)(draw % (SleepOneIn * 4));
        var amount = (int)(draw >> 40);
        if (roll < 4)
        {
            return insideLock ? new(Perturbation.Yield, 0) : new(Perturbation.Sleep, amount & 1);
        }

        if (roll < 4 + (SleepOneIn * 4 / YieldOneIn))
        {
            return new(Perturbation.Yield, 0);
        }

        if (roll < 4 + (SleepOneIn * 4 / YieldOneIn) + (SleepOneIn * 4 / SpinOneIn))
        {
            return new(Perturbation.Spin, 1 + (amount % MaxSpin));
        }

        return new(Perturbation.None, 0);
    }

    public void OnSchedulingPoint(OperationKind kind, string file, int line)
    {
        if (t_state is not { } state || !_active)
        {
            return;
        }

        // Track lock-held regions before deciding: the point comes before the operation, so an acquire's delay is
        // still outside the lock, and a release's is still inside it.
        var insideLock = state.Locks > 0;
        if (kind == OperationKind.LockAcquire)
        {
            state.Locks++;
        }
        else if (kind == OperationKind.LockRelease && state.Locks > 0)
        {
            state.Locks--;
        }

        if (state.LockPointsOnly && kind is not (OperationKind.LockAcquire or OperationKind.LockTryAcquire or OperationKind.LockRelease or OperationKind.Interleave))
        {
            return;
        }

        // Fewer points, more noise at each: a thread perturbed at its lock points only draws up to LockPointDraws times
        // and takes the first choice that does something (a spin about 1 in 4, a yield about 1 in 32).
        var choice = Decide(ref state.Stream, insideLock);
        for (var draw = 1; state.LockPointsOnly && choice.What == Perturbation.None && draw < LockPointDraws; draw++)
        {
            choice = Decide(ref state.Stream, insideLock);
        }

        switch (choice.What)
        {
            case Perturbation.Spin:
                Thread.SpinWait(choice.Amount);
                break;
            case Perturbation.Yield:
                Thread.Yield();
                break;
            case Perturbation.Sleep:
                Thread.Sleep(choice.Amount);
                break;
        }
    }

    /// <summary>Perturbation never takes over a wait: the caller waits for real (its own spins are points too).</summary>
    public bool WaitUntil(OperationKind kind, Func<object?, bool> condition, object? state, string file, int line) => false;

    private static ulong StreamSeed(int seed, int index) => ((ulong)(uint)seed << 32) ^ (ulong)(uint)index ^ 0x5EED_0000_0000_0000UL;

    /// <summary>SplitMix64: one 64-bit draw, the state advanced by the golden gamma.</summary>
    private static ulong Next(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private sealed class ThreadState(ulong stream)
    {
        public ulong Stream = stream;
        public int Locks;
        public bool LockPointsOnly;
    }
}
