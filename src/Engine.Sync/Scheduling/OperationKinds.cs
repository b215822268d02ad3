namespace Engine.Sync;

/// <summary>Classification helpers for <see cref="OperationKind"/>.</summary>
public static class OperationKinds
{
    /// <summary>
    /// True when the operation may change shared state that a waiting thread's condition reads. A failed
    /// compare-and-swap writes nothing, but a scheduler does not see its outcome, so it is counted: the cost of that
    /// conservatism is one extra condition evaluation, never a missed wake-up.
    /// </summary>
    public static bool MayWrite(OperationKind kind) => kind switch
    {
        OperationKind.Write or OperationKind.CompareExchange or OperationKind.Exchange or OperationKind.Increment
            or OperationKind.Decrement or OperationKind.Add or OperationKind.Or or OperationKind.And
            or OperationKind.LockAcquire or OperationKind.LockTryAcquire or OperationKind.LockRelease
            or OperationKind.ThreadEnd or OperationKind.Interleave or OperationKind.Yield => true,
        _ => false,
    };
}
