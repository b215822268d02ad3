// A small layered "assembly" for ArchitectureTests' self-check: the analysis must find each of the hidden upward
// references below (one per type in Bottom, named after where it hides) and none of the legal ones.
// Layers, bottom to top: Fixture.Bottom, Fixture.Upper, then the root Fixture (Hub is its machine).

namespace Engine.Systematic.Tests.Architecture.Fixture
{
    /// <summary>The composer: no subsystem may reference it or take it.</summary>
    public sealed class Hub
    {
        public Bottom.Allocator Allocator { get; } = new();

        public Upper.Kswapd Kswapd { get; } = new();
    }

    /// <summary>Vocabulary: options and an enum subsystems may use.</summary>
    public sealed class HubOptions
    {
        public Mode Mode { get; init; }
    }

    public enum Mode
    {
        Old,
        New,
    }

    /// <summary>Vocabulary by kind, but it reaches Upper: Bottom may not use it (Bottom -> it -> Upper would go up).</summary>
    public sealed class WidgetFault(Upper.Widget culprit) : Exception
    {
        public Upper.Widget Culprit { get; } = culprit;
    }

    /// <summary>Vocabulary by kind, but it reaches the composer: no subsystem may use it.</summary>
    public sealed class HubGone(Hub hub) : Exception
    {
        public Hub Hub { get; } = hub;
    }

    /// <summary>Vocabulary: an exception subsystems may throw.</summary>
    public sealed class HubFault : Exception
    {
        public HubFault()
        {
        }

        public HubFault(string message)
            : base(message)
        {
        }

        public HubFault(string message, Exception innerException)
            : base(message, innerException)
        {
        }
    }
}

namespace Engine.Systematic.Tests.Architecture.Fixture.Bottom
{
    using Engine.Systematic.Tests.Architecture.Fixture.Upper;

    // Illegal: each hides one reference to the layer above.
    public class ViaBaseType : Widget;

    public sealed class ViaInterface : IUpperMarker;

    public sealed class ViaField
    {
        public Widget? Field;
    }

    public sealed class ViaProperty
    {
        public Widget? Property { get; set; }
    }

    public sealed class ViaParameter
    {
        public static int Use(Widget widget) => widget.Value;
    }

    public sealed class ViaGenericArgument
    {
        public List<Widget> Items { get; } = [];
    }

    public sealed class ViaConstraint<T>
        where T : IUpperMarker
    {
        public T? Value { get; set; }
    }

    public sealed class ViaCallInBody
    {
        public static int Run() => Widget.Make();
    }

    public sealed class ViaTypeof
    {
        public static Type Run() => typeof(Widget);
    }

    public sealed class ViaGenericMethodArgument
    {
        public static int Run() => Array.Empty<Widget>().Length;
    }

    public sealed class ViaClosure
    {
        public static Func<int> Run(int seed) => () => Widget.Make() + seed;   // only in the display class's method
    }

    public sealed class ViaIterator
    {
        public static IEnumerable<int> Run(int count)
        {
            for (var i = 0; i < count; i++)
            {
                yield return Widget.Make();                                     // only in the state machine's MoveNext
            }
        }
    }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class TypeArgumentAttribute(Type type) : Attribute
    {
        public Type Type { get; } = type;
    }

    [TypeArgument(typeof(Widget))]
    public sealed class ViaAttributeArgument;

    public sealed class ViaNestedType
    {
        public sealed class Inner
        {
            public static int Run() => Widget.Make();
        }
    }

    // Illegal from the root: a class that is not vocabulary, and taking the composer (rule 3 as well).
    public sealed class TakesHub(Hub hub)
    {
        public Hub Hub { get; } = hub;
    }

    // Illegal: vocabulary that goes up, or to the composer, for them.
    public sealed class ViaVocabulary
    {
        public static bool IsWidgetFault(Exception e) => e is WidgetFault;
    }

    public sealed class ViaVocabularyToHub
    {
        public static bool IsHubGone(Exception e) => e is HubGone;
    }

    // Legal: the root's vocabulary.
    public sealed class UsesVocabulary(HubOptions options)
    {
        public Mode Mode => options.Mode == Mode.Old ? throw new HubFault("old") : options.Mode;
    }

    // Legal: the planned upward call, through an interface declared here and implemented above.
    public interface IReclaimer
    {
        int Reclaim(int wanted);
    }

    public sealed class Allocator
    {
        public IReclaimer? Reclaimer { get; set; }

        public int Allocate() => Reclaimer?.Reclaim(1) ?? 0;
    }
}

namespace Engine.Systematic.Tests.Architecture.Fixture.Upper
{
    using Engine.Systematic.Tests.Architecture.Fixture.Bottom;

    public interface IUpperMarker;

    public class Widget
    {
        public int Value { get; init; }

        public static int Make() => 42;

        public static Widget Create(int value) => new() { Value = value };
    }

    // Legal: downward references.
    public sealed class Kswapd : IReclaimer
    {
        public Allocator Allocator { get; } = new();

        public int Reclaim(int wanted) => wanted + Allocator.Allocate();
    }
}

namespace Engine.Systematic.Tests.Architecture.Fixture.Stray
{
    /// <summary>In a namespace the layer list does not name.</summary>
    public sealed class Lost;
}
