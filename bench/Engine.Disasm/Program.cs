using Engine.Benchmarks;
using System.Runtime.CompilerServices;
using Engine.Sync;

namespace Engine.Disasm;

/// <summary>
/// Pairs of tiny, never-inlined methods, one through the <c>Engine.Sync</c> facade and one on the raw
/// <see cref="Interlocked"/>/<see cref="Volatile"/> call, called often enough to be re-jitted at tier 1 so that the
/// JIT's listings can be compared. Run with <c>DOTNET_JitDisasm="Facade* Raw*"</c> (docs/zero-cost.md has the
/// exact command). The process prints whether the scheduling hook is enabled; the interesting listing is with it off.
/// </summary>
public static class Program
{
    private const int Rounds = 60;
    private const int CallsPerRound = 2_000;

    /// <summary>Facade compare-and-swap of an int.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int FacadeCas(ref int x) => Atomic.CompareExchange(ref x, 1, 0);

    /// <summary>Raw compare-and-swap of an int.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int RawCas(ref int x) => Interlocked.CompareExchange(ref x, 1, 0);

    /// <summary>Facade compare-and-swap of a long.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static long FacadeCasLong(ref long x) => Atomic.CompareExchange(ref x, 1L, 0L);

    /// <summary>Raw compare-and-swap of a long.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static long RawCasLong(ref long x) => Interlocked.CompareExchange(ref x, 1L, 0L);

    /// <summary>Facade increment.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int FacadeIncrement(ref int x) => Atomic.Increment(ref x);

    /// <summary>Raw increment.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int RawIncrement(ref int x) => Interlocked.Increment(ref x);

    /// <summary>Facade acquire load.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int FacadeRead(ref int x) => Atomic.Read(ref x);

    /// <summary>Raw acquire load.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int RawRead(ref int x) => Volatile.Read(ref x);

    /// <summary>Facade spinlock acquire + release.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void FacadeSpinlock(Spinlock spinlock)
    {
        spinlock.Enter();
        spinlock.Exit();
    }

    /// <summary>Raw TATAS acquire + release.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void RawSpinlock(RawTatasLock spinlock)
    {
        spinlock.Enter();
        spinlock.Exit();
    }

    /// <summary>
    /// Calls every pair enough times, with pauses, for tiered compilation to reach tier 1. With
    /// <c>--late-init</c> nothing reads <see cref="SchedulingHook.IsEnabled"/> before the wrappers are first jitted
    /// (it is printed at the end instead), to see what a JIT that compiles before the type is initialised does.
    /// </summary>
    public static int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var lateInit = args.Contains("--late-init");
        if (!lateInit)
        {
            PrintHookState();
        }

        var facadeLock = new Spinlock();
        var rawLock = new RawTatasLock();
        int i32 = 0;
        long i64 = 0;
        long sink = 0;
        for (var round = 0; round < Rounds; round++)
        {
            for (var call = 0; call < CallsPerRound; call++)
            {
                i32 = 0;
                sink += FacadeCas(ref i32);
                i32 = 0;
                sink += RawCas(ref i32);
                i64 = 0;
                sink += FacadeCasLong(ref i64);
                i64 = 0;
                sink += RawCasLong(ref i64);
                sink += FacadeIncrement(ref i32);
                sink += RawIncrement(ref i32);
                sink += FacadeRead(ref i32);
                sink += RawRead(ref i32);
                FacadeSpinlock(facadeLock);
                RawSpinlock(rawLock);
            }

            // Give the background tier-1 compiler time: promotion waits for a quiet period after call counting.
            Thread.Sleep(10);
        }

        if (lateInit)
        {
            PrintHookState();
        }

        Console.WriteLine($"done ({sink})");
        return 0;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void PrintHookState() => Console.WriteLine($"SchedulingHook.IsEnabled = {SchedulingHook.IsEnabled}");
}
