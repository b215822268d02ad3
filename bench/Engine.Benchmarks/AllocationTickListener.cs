using System.Diagnostics.Tracing;

namespace Engine.Benchmarks;

/// <summary>
/// Listens to the runtime's GC allocation-tick events (one about every 100 KB allocated, naming the type of the
/// object that crossed the threshold) and counts them by type, to name what a loop allocates.
/// </summary>
public sealed class AllocationTickListener : EventListener
{
    private const string RuntimeSource = "Microsoft-Windows-DotNETRuntime";
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly Dictionary<string, int> _ticks = [];
    private readonly Lock _lock = new();

    /// <summary>Allocation ticks seen so far, by type name.</summary>
    public IReadOnlyDictionary<string, int> Snapshot()
    {
        lock (_lock)
        {
            return new Dictionary<string, int>(_ticks);
        }
    }

    /// <summary>Prints the ticks seen so far as a markdown table, most frequent type first, under <paramref name="title"/>.</summary>
    public void PrintTable(string title)
    {
        Console.WriteLine();
        Console.WriteLine($"GC allocation ticks over {title} (a tick marks ~100 KB allocated and names the object that crossed it):");
        Console.WriteLine();
        Console.WriteLine("| type | ticks |");
        Console.WriteLine("|---|---:|");
        foreach (var (type, ticks) in Snapshot().OrderByDescending(p => p.Value))
        {
            Console.WriteLine($"| {type} | {ticks} |");
        }
    }

    /// <inheritdoc />
    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        ArgumentNullException.ThrowIfNull(eventSource);
        if (eventSource.Name == RuntimeSource)
        {
            EnableEvents(eventSource, EventLevel.Verbose, GcKeyword);
        }
    }

    /// <inheritdoc />
    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        ArgumentNullException.ThrowIfNull(eventData);
        if (eventData.EventName is null || !eventData.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || eventData.PayloadNames is null)
        {
            return;
        }

        var index = eventData.PayloadNames.IndexOf("TypeName");
        var type = index >= 0 && eventData.Payload is { } payload ? payload[index] as string ?? "?" : "?";
        lock (_lock)
        {
            _ticks[type] = _ticks.GetValueOrDefault(type) + 1;
        }
    }
}
