using System.Runtime.CompilerServices;

namespace Engine.Sync;

/// <summary>
/// A reader-writer semaphore, the model of the kernel's <c>rw_semaphore</c> (<c>mmap_lock</c>). Not reentrant.
/// <para>
/// One word holds the state: <see cref="WriterHeld"/> when a writer owns it, otherwise the number of readers.
/// A second word counts writers waiting; while it is non-zero new readers wait, so a stream of readers cannot starve
/// a writer (the kernel's rwsem hands off to waiting writers in the same spirit). Consequently, as in the kernel, a
/// thread must not take the read side twice: a writer arriving in between deadlocks it.
/// </para>
/// </summary>
public sealed class ReaderWriterSemaphore
{
    private const int WriterHeld = -1;

    private int _state;
    private int _writersWaiting;

    /// <summary>Number of readers holding the semaphore, or -1 while a writer holds it.</summary>
    public int State => Volatile.Read(ref _state);

    /// <summary>True while a writer holds the semaphore.</summary>
    public bool IsWriteHeld => Volatile.Read(ref _state) == WriterHeld;

    /// <summary>True while at least one reader holds the semaphore.</summary>
    public bool IsReadHeld => Volatile.Read(ref _state) > 0;

    /// <summary>Takes the read side (<c>down_read</c>).</summary>
    public void EnterRead([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        while (!TryEnterRead(file, line))
        {
            Wait.Until(this, static s => Volatile.Read(ref s._state) != WriterHeld && Volatile.Read(ref s._writersWaiting) == 0, file, line);
        }
    }

    /// <summary>Takes the read side if no writer holds or waits for it (<c>down_read_trylock</c>).</summary>
    public bool TryEnterRead([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        while (true)
        {
            var state = Atomic.Read(ref _state, file, line);
            if (state == WriterHeld || Atomic.Read(ref _writersWaiting, file, line) != 0)
            {
                return false;
            }

            if (Atomic.CompareExchange(ref _state, state + 1, state, file, line) == state)
            {
                return true;
            }
        }
    }

    /// <summary>Releases the read side (<c>up_read</c>).</summary>
    public void ExitRead([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        var now = Atomic.Decrement(ref _state, file, line);
        if (now < 0)
        {
            Atomic.Increment(ref _state, file, line);
            throw new SynchronizationLockException("ReaderWriterSemaphore.ExitRead without a matching EnterRead.");
        }
    }

    /// <summary>Takes the write side (<c>down_write</c>).</summary>
    public void EnterWrite([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        Atomic.Increment(ref _writersWaiting, file, line);
        while (Atomic.CompareExchange(ref _state, WriterHeld, 0, file, line) != 0)
        {
            Wait.Until(this, static s => Volatile.Read(ref s._state) == 0, file, line);
        }

        Atomic.Decrement(ref _writersWaiting, file, line);
    }

    /// <summary>Takes the write side if nobody holds it (<c>down_write_trylock</c>).</summary>
    public bool TryEnterWrite([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
        => Atomic.CompareExchange(ref _state, WriterHeld, 0, file, line) == 0;

    /// <summary>Releases the write side (<c>up_write</c>).</summary>
    public void ExitWrite([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (Atomic.CompareExchange(ref _state, 0, WriterHeld, file, line) != WriterHeld)
        {
            throw new SynchronizationLockException("ReaderWriterSemaphore.ExitWrite without a matching EnterWrite.");
        }
    }

    /// <summary>Turns a held write side into a held read side without letting another writer in (<c>downgrade_write</c>).</summary>
    public void DowngradeWrite([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (Atomic.CompareExchange(ref _state, 1, WriterHeld, file, line) != WriterHeld)
        {
            throw new SynchronizationLockException("ReaderWriterSemaphore.DowngradeWrite without the write side held.");
        }
    }
}
