namespace Engine.Sync;

/// <summary>
/// The visible operations at which a controlled scheduler may switch threads. Every primitive in
/// <c>Engine.Sync</c> announces one of these, with its caller's source location, before it acts.
/// </summary>
public enum OperationKind : byte
{
    /// <summary>A volatile (acquire) read.</summary>
    Read,
    /// <summary>A volatile (release) write.</summary>
    Write,
    /// <summary>An interlocked compare-and-swap.</summary>
    CompareExchange,
    /// <summary>An interlocked exchange.</summary>
    Exchange,
    /// <summary>An interlocked increment.</summary>
    Increment,
    /// <summary>An interlocked decrement.</summary>
    Decrement,
    /// <summary>An interlocked add.</summary>
    Add,
    /// <summary>An interlocked bitwise or.</summary>
    Or,
    /// <summary>An interlocked bitwise and.</summary>
    And,
    /// <summary>A full memory barrier.</summary>
    MemoryBarrier,
    /// <summary>A spinlock or semaphore acquire (blocking).</summary>
    LockAcquire,
    /// <summary>A spinlock or semaphore try-acquire (never blocks).</summary>
    LockTryAcquire,
    /// <summary>A spinlock or semaphore release.</summary>
    LockRelease,
    /// <summary>A check of a <see cref="Wait.Until(Func{bool}, string, int)"/> condition.</summary>
    WaitCheck,
    /// <summary>An explicit <see cref="SchedulingPoint.Interleave"/>.</summary>
    Interleave,
    /// <summary>An explicit <see cref="SchedulingPoint.Yield"/>: the caller offers to step aside.</summary>
    Yield,
    /// <summary>A controlled thread begins (or is created).</summary>
    ThreadStart,
    /// <summary>A controlled thread waits for another to finish.</summary>
    ThreadJoin,
    /// <summary>A controlled thread finishes.</summary>
    ThreadEnd,
    /// <summary>A nondeterministic data choice made through the scheduler.</summary>
    RandomChoice,
}
