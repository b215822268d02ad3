namespace Engine.Systematic;

/// <summary>What a recorded decision chose.</summary>
public enum DecisionKind : byte
{
    /// <summary>Which thread runs next.</summary>
    Schedule,
    /// <summary>A <see cref="ControlledRandom.RandomBoolean"/> value.</summary>
    Boolean,
    /// <summary>A <see cref="ControlledRandom.RandomInteger"/> value.</summary>
    Integer,
}
