using Engine.Sync;
using Engine.Systematic;

namespace ClassicBugs;

/// <summary>
/// A Treiber stack over three reusable nodes (A, B, C as indices; -1 is null). One thread pops once; the other pops
/// twice and pushes its first node back — reuse. Afterwards every node must be in exactly one place: on the stack or
/// held by one thread.
/// </summary>
public static class AbaStack
{
    private const int Nodes = 3;
    private const int Null = -1;

    /// <summary>
    /// The head is a bare index. Pop reads head A and A.next = B, is preempted while the other thread pops A and B and
    /// pushes A back, then its compare-and-swap sees A again and installs B — which the other thread holds.
    /// </summary>
    [SystematicTest(ExpectBug = true)]
    public static void Buggy()
    {
        var stack = new PlainStack();
        Run(stack.Pop, stack.Push, stack.Contents);
    }

    /// <summary>The head carries a version tag bumped by every successful update, so a stale head never compares equal.</summary>
    [SystematicTest]
    public static void Correct()
    {
        var stack = new TaggedStack();
        Run(stack.Pop, stack.Push, stack.Contents);
    }

    private static void Run(Func<int> pop, Action<int> push, Func<List<int>> contents)
    {
        var poppedByFirst = Null;
        var first = ControlledThread.Start(() => poppedByFirst = pop(), "popper");
        var a = pop();
        var b = pop();
        if (a != Null)
        {
            push(a);
        }

        first.Join();
        var seen = new int[Nodes];
        foreach (var node in contents())
        {
            seen[node]++;
        }

        foreach (var held in new[] { poppedByFirst, b })
        {
            if (held != Null)
            {
                seen[held]++;
            }
        }

        for (var node = 0; node < Nodes; node++)
        {
            Specification.Assert(seen[node] == 1,
                $"ABA: node {"ABC"[node]} is in {seen[node]} places (stack [{string.Join(",", contents().Select(n => "ABC"[n]))}], " +
                $"popper holds {Name(poppedByFirst)}, the other thread holds {Name(b)})");
        }
    }

    private static string Name(int node) => node == Null ? "nothing" : "ABC"[node].ToString();

    private sealed class PlainStack
    {
        private readonly int[] _next = [1, 2, Null];
        private int _head;

        public int Pop()
        {
            while (true)
            {
                var head = Atomic.Read(ref _head);
                if (head == Null)
                {
                    return Null;
                }

                var next = Atomic.Read(ref _next[head]);
                if (Atomic.CompareExchange(ref _head, next, head) == head)
                {
                    return head;
                }
            }
        }

        public void Push(int node)
        {
            while (true)
            {
                var head = Atomic.Read(ref _head);
                Atomic.Write(ref _next[node], head);
                if (Atomic.CompareExchange(ref _head, node, head) == head)
                {
                    return;
                }
            }
        }

        public List<int> Contents() => Walk(Atomic.Read(ref _head), _next);
    }

    private sealed class TaggedStack
    {
        private readonly int[] _next = [1, 2, Null];

        // Low 32 bits: the index; high 32 bits: a version bumped by every successful update.
        private long _head;

        public int Pop()
        {
            while (true)
            {
                var head = Atomic.Read(ref _head);
                var index = (int)(uint)head;
                if (index == Null)
                {
                    return Null;
                }

                var next = Atomic.Read(ref _next[index]);
                if (Atomic.CompareExchange(ref _head, Pack(next, Version(head) + 1), head) == head)
                {
                    return index;
                }
            }
        }

        public void Push(int node)
        {
            while (true)
            {
                var head = Atomic.Read(ref _head);
                Atomic.Write(ref _next[node], (int)(uint)head);
                if (Atomic.CompareExchange(ref _head, Pack(node, Version(head) + 1), head) == head)
                {
                    return;
                }
            }
        }

        public List<int> Contents() => Walk((int)(uint)Atomic.Read(ref _head), _next);

        private static long Version(long head) => (long)((ulong)head >> 32);

        private static long Pack(int index, long version) => (version << 32) | (uint)index;
    }

    private static List<int> Walk(int head, int[] next)
    {
        var nodes = new List<int>();
        for (var node = head; node != Null && nodes.Count <= Nodes; node = Atomic.Read(ref next[node]))
        {
            nodes.Add(node);
        }

        return nodes;
    }
}
