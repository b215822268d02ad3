namespace Engine.Benchmarks;

/// <summary>How the threads of an engine page_fault1 run share address spaces.</summary>
public enum EngineSharing
{
    /// <summary>One thread, one process.</summary>
    SingleThread,

    /// <summary>Several threads in one process (one mm, one mmap_lock), each with its own CPU and region: the kernel's threads mode.</summary>
    SharedProcess,

    /// <summary>Several threads, each with its own process (own mm): the kernel's processes mode.</summary>
    SeparateProcesses,

    /// <summary>
    /// Diagnostic, no kernel counterpart: several threads, each with its own machine (own frames, allocator, CPUs).
    /// Shows how far the threads scale when they share nothing in the engine.
    /// </summary>
    SeparateMachines,
}
