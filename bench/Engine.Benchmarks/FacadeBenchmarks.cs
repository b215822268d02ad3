using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Engine.Sync;

namespace Engine.Benchmarks;

/// <summary>
/// The cost of the <c>Engine.Sync</c> facade in a process that is not a systematic test, against the bare
/// <see cref="Interlocked"/>/<see cref="Volatile"/> call it wraps. Each category pairs a raw baseline with its facade
/// twin; both run the same loop of <see cref="Ops"/> operations on a field of this class, so the reported mean is
/// the cost of one operation and the ratio column is facade / raw.
/// </summary>
[Config(typeof(FacadeConfig))]
[MemoryDiagnoser]
[CategoriesColumn]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
public class FacadeBenchmarks
{
    /// <summary>Operations per benchmark invocation.</summary>
    public const int Ops = 1000;

    private readonly Spinlock _facadeLock = new();
    private readonly RawTatasLock _rawLock = new();
    private int _int;
    private long _long;

    /// <summary>Refuses to measure if the scheduling hook is on: these numbers are about the disabled hook.</summary>
    [GlobalSetup]
    public void CheckHookDisabled()
    {
        if (SchedulingHook.IsEnabled)
        {
            throw new InvalidOperationException(
                $"SchedulingHook.IsEnabled is true in the facade benchmark process; unset {SchedulingHook.EnvironmentVariable}.");
        }
    }

    /// <summary>Successful int compare-and-swaps through <see cref="Interlocked"/>.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    [BenchmarkCategory("CAS int")]
    public int RawCasInt()
    {
        _int = 0;
        var sum = 0;
        for (var i = 0; i < Ops; i++)
        {
            sum += Interlocked.CompareExchange(ref _int, i + 1, i);
        }

        return sum;
    }

    /// <summary>Successful int compare-and-swaps through <see cref="Atomic"/>.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    [BenchmarkCategory("CAS int")]
    public int FacadeCasInt()
    {
        _int = 0;
        var sum = 0;
        for (var i = 0; i < Ops; i++)
        {
            sum += Atomic.CompareExchange(ref _int, i + 1, i);
        }

        return sum;
    }

    /// <summary>Successful long compare-and-swaps through <see cref="Interlocked"/>.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    [BenchmarkCategory("CAS long")]
    public long RawCasLong()
    {
        _long = 0;
        long sum = 0;
        for (long i = 0; i < Ops; i++)
        {
            sum += Interlocked.CompareExchange(ref _long, i + 1, i);
        }

        return sum;
    }

    /// <summary>Successful long compare-and-swaps through <see cref="Atomic"/>.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    [BenchmarkCategory("CAS long")]
    public long FacadeCasLong()
    {
        _long = 0;
        long sum = 0;
        for (long i = 0; i < Ops; i++)
        {
            sum += Atomic.CompareExchange(ref _long, i + 1, i);
        }

        return sum;
    }

    /// <summary>Interlocked increments of an int.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    [BenchmarkCategory("Increment")]
    public int RawIncrement()
    {
        var sum = 0;
        for (var i = 0; i < Ops; i++)
        {
            sum += Interlocked.Increment(ref _int);
        }

        return sum;
    }

    /// <summary>Interlocked increments of an int through <see cref="Atomic"/>.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    [BenchmarkCategory("Increment")]
    public int FacadeIncrement()
    {
        var sum = 0;
        for (var i = 0; i < Ops; i++)
        {
            sum += Atomic.Increment(ref _int);
        }

        return sum;
    }

    /// <summary>Acquire loads of an int through <see cref="Volatile"/>.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    [BenchmarkCategory("Volatile read")]
    public int RawRead()
    {
        var sum = 0;
        for (var i = 0; i < Ops; i++)
        {
            sum += Volatile.Read(ref _int);
        }

        return sum;
    }

    /// <summary>Acquire loads of an int through <see cref="Atomic"/>.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    [BenchmarkCategory("Volatile read")]
    public int FacadeRead()
    {
        var sum = 0;
        for (var i = 0; i < Ops; i++)
        {
            sum += Atomic.Read(ref _int);
        }

        return sum;
    }

    /// <summary>Uncontended acquire + release of a hand-written TATAS lock.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    [BenchmarkCategory("Spinlock enter+exit")]
    public void RawSpinlock()
    {
        var spinlock = _rawLock;
        for (var i = 0; i < Ops; i++)
        {
            spinlock.Enter();
            spinlock.Exit();
        }
    }

    /// <summary>Uncontended acquire + release of <see cref="Spinlock"/>.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    [BenchmarkCategory("Spinlock enter+exit")]
    public void FacadeSpinlock()
    {
        var spinlock = _facadeLock;
        for (var i = 0; i < Ops; i++)
        {
            spinlock.Enter();
            spinlock.Exit();
        }
    }
}
