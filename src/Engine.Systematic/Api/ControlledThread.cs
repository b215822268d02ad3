using System.Runtime.CompilerServices;
using Engine.Sync;
using Engine.Systematic.Runtime;

namespace Engine.Systematic;

/// <summary>
/// A thread of a test body. Under the tester it is a logical thread run on a pooled OS thread, scheduled with the
/// others one at a time; under an <see cref="IExternalScheduler"/> (Coyote) it is that scheduler's controlled thread.
/// Outside both it is a real, dedicated OS thread, so the same body can run as a plain stress test on real concurrency.
/// </summary>
public sealed class ControlledThread
{
    private static readonly Func<object?, bool> s_isCompleted = static s => ((Operation)s!).Status == OperationStatus.Completed;

    private readonly Operation? _operation;
    private readonly IExternalThread? _external;
    private readonly Thread? _thread;
    private Exception? _failure;

    private ControlledThread(Operation operation) => _operation = operation;

    private ControlledThread(IExternalThread external) => _external = external;

    private ControlledThread(Action body, string? name)
    {
        _thread = new Thread(() =>
        {
            try
            {
                body();
            }
            catch (Exception e)
            {
                _failure = e;
            }
        })
        { IsBackground = true, Name = name };
    }

    /// <summary>The thread's id in its iteration (0 is the test body), or -1 for a real thread.</summary>
    public int Id => _operation?.Id ?? _external?.Id ?? -1;

    /// <summary>True once the thread's body has returned or thrown.</summary>
    public bool IsCompleted => _operation is not null
        ? _operation.Status == OperationStatus.Completed
        : _external?.IsCompleted ?? !_thread!.IsAlive;

    /// <summary>Starts a thread running <paramref name="body"/>.</summary>
    public static ControlledThread Start(Action body, string? name = null, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (ControlledRuntime.Current is { } current)
        {
            return new ControlledThread(current.Runtime.StartThread(current, body, name, file, line));
        }

        if (ExternalScheduler.Controlling is { } external)
        {
            return new ControlledThread(external.StartThread(body, name, file, line));
        }

        var thread = new ControlledThread(body, name);
        thread._thread!.Start();
        return thread;
    }

    /// <summary>
    /// Waits until the thread finishes. Under the tester the caller is disabled meanwhile; outside it, an exception
    /// the thread's body threw is rethrown here, wrapped.
    /// </summary>
    public void Join([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (_operation is not null)
        {
            var current = ControlledRuntime.Current
                ?? throw new InvalidOperationException("A controlled thread can only be joined from another controlled thread of its test.");
            if (!ReferenceEquals(current.Runtime, _operation.Runtime))
            {
                throw new InvalidOperationException("A controlled thread can only be joined from its own iteration.");
            }

            current.Runtime.OnSchedulingPoint(current, OperationKind.ThreadJoin, file, line);
            current.Runtime.WaitUntil(current, OperationKind.ThreadJoin, s_isCompleted, _operation, file, line);
            return;
        }

        if (_external is not null)
        {
            _external.Join(file, line);
            return;
        }

        _thread!.Join();
        if (_failure is not null)
        {
            throw new AggregateException($"Thread '{_thread.Name}' failed.", _failure);
        }
    }
}
