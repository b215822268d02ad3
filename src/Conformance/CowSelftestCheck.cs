namespace Conformance;

/// <summary>The properties the cow.c scenarios check; a failed scenario names the one it broke.</summary>
public enum CowSelftestCheck
{
    /// <summary>After fork, nothing the parent stores reaches the child: not its mapping, not a reference it took.</summary>
    NoLeakFromParentIntoChild,

    /// <summary>After fork, nothing the child stores reaches the parent: not its mapping, not a reference it took.</summary>
    NoLeakFromChildIntoParent,

    /// <summary>A long-term write pin (an io_uring fixed buffer) keeps seeing what the process stores.</summary>
    LongTermWritePinIsReliable,

    /// <summary>A long-term read-only pin keeps seeing what the process stores.</summary>
    LongTermReadOnlyPinIsReliable,

    /// <summary>A store through a private mapping reaches no other mapping of the same page (zero page, file).</summary>
    OtherMappingUnmodified,
}
