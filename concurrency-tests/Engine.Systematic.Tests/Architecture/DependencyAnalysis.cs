using System.Runtime.InteropServices;
using Mono.Cecil;
using Mono.Cecil.Cil;

namespace Engine.Systematic.Tests.Architecture;

/// <summary>A namespace of the layer list; a subsystem obeys rules 2 and 3, a top namespace (the façade) does not.</summary>
internal sealed record Layer(string Namespace, bool IsSubsystem)
{
    public static Layer Subsystem(string ns) => new(ns, IsSubsystem: true);

    public static Layer Top(string ns) => new(ns, IsSubsystem: false);
}

/// <summary>
/// The layering rules of one assembly. <see cref="Layers"/> run bottom to top: a namespace may reference its own and
/// those strictly below it (rule 1). From <see cref="RootNamespace"/>, a subsystem may reference only the root's
/// vocabulary: the <see cref="VocabularyClasses"/>, and the public enums and exception types (rule 2). No subsystem
/// type has a member whose signature mentions <see cref="Composer"/> (rule 3). Types of other assemblies (the BCL,
/// Engine.Sync) are always allowed.
/// </summary>
internal sealed record LayerRules(string RootNamespace, IReadOnlyList<Layer> Layers, IReadOnlyCollection<string> VocabularyClasses, string Composer);

/// <summary>One reference from a type of the analysed assembly to another, both under the root namespace.</summary>
/// <param name="Source">The outermost type holding the reference (a closure or a state machine counts as its parent).</param>
/// <param name="Target">The outermost type referenced.</param>
/// <param name="Via">Where: the member or the instruction.</param>
internal sealed record Dependency(string SourceNamespace, string Source, string TargetNamespace, string Target, string Via);

/// <summary>A dependency that breaks a rule, with the other places the same edge is made.</summary>
internal sealed record Violation(int Rule, Dependency First, int MoreSites)
{
    public override string ToString()
        => $"{First.Source} -> {First.Target} (via {First.Via}){(MoreSites > 0 ? $" [+{MoreSites} more site{(MoreSites == 1 ? "" : "s")}]" : "")}";
}

/// <summary>What <see cref="DependencyAnalysis.Analyse"/> found.</summary>
internal sealed class AnalysisResult
{
    /// <summary>Every reference between different namespaces under the root, one per site.</summary>
    public required IReadOnlyList<Dependency> Dependencies { get; init; }

    /// <summary>Rule 1 (only downward) and rule 2 (only the root's vocabulary) violations, one per type pair.</summary>
    public required IReadOnlyList<Violation> EdgeViolations { get; init; }

    /// <summary>Rule 3: members of subsystem types whose signature mentions the composer (the machine).</summary>
    public required IReadOnlyList<Violation> ComposerViolations { get; init; }

    /// <summary>Every namespace under the root that holds a type.</summary>
    public required IReadOnlyList<string> Namespaces { get; init; }

    /// <summary>Namespaces under the root that hold types but are not in the layer list, with a few of their types.</summary>
    public required IReadOnlyDictionary<string, IReadOnlyList<string>> UnlistedNamespaces { get; init; }

    /// <summary>The root's vocabulary (full names) that subsystems may reference.</summary>
    public required IReadOnlyList<string> RootVocabulary { get; init; }

    /// <summary>Types written by hand (not compiler-generated) outside the root namespace.</summary>
    public required IReadOnlyList<string> ForeignTypes { get; init; }

    /// <summary>Distinct namespace edges (source, target) actually present.</summary>
    public IReadOnlyList<(string From, string To)> NamespaceEdges
        => Dependencies.Select(d => (d.SourceNamespace, d.TargetNamespace)).Distinct().OrderBy(e => e.SourceNamespace, StringComparer.Ordinal).ThenBy(e => e.TargetNamespace, StringComparer.Ordinal).ToList();

    public bool IsClean => EdgeViolations.Count == 0 && ComposerViolations.Count == 0 && UnlistedNamespaces.Count == 0;

    /// <summary>Everything wrong, one line per edge, grouped by rule, so that all of it can be fixed in one go.</summary>
    public string Describe()
    {
        var text = new System.Text.StringBuilder();
        if (UnlistedNamespaces.Count > 0)
        {
            text.AppendLine("Namespaces not in the layer list (ArchitectureTests.Layers): add each at its place, bottom to top:");
            foreach (var (ns, types) in UnlistedNamespaces.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                text.AppendLine($"  {ns} (types: {string.Join(", ", types)})");
            }
        }

        Section(1, "Rule 1: a namespace references only namespaces strictly below it in the layer list");
        Section(2, $"Rule 2: from the root namespace a subsystem references only its vocabulary ({string.Join(", ", RootVocabulary)})");
        if (ComposerViolations.Count > 0)
        {
            text.AppendLine("Rule 3: no subsystem takes the machine (no constructor, method, field or property signature mentions it):");
            foreach (var v in ComposerViolations)
            {
                text.AppendLine($"  {v}");
            }
        }

        return text.ToString();

        void Section(int rule, string title)
        {
            var violations = EdgeViolations.Where(v => v.Rule == rule).ToList();
            if (violations.Count == 0)
            {
                return;
            }

            text.AppendLine($"{title}:");
            foreach (var v in violations)
            {
                text.AppendLine($"  {v}");
            }
        }
    }
}

/// <summary>
/// Reads a compiled assembly with Mono.Cecil and collects, for every type, the types it references: base type,
/// interfaces, generic constraints, fields, properties, events, method signatures, custom attributes (their type and
/// <c>typeof</c> arguments), local variables, exception handlers and every instruction operand (a type, a field, a
/// method or a call site, with its declaring type and generic arguments). Nested types count as their outermost
/// declaring type, so closures, iterators and async state machines count as the method that wrote them.
/// </summary>
internal static class DependencyAnalysis
{
    public static AnalysisResult Analyse(string assemblyPath, LayerRules rules)
    {
        // The resolver is needed only to decode attribute arguments of enum types and to follow base types to Exception.
        using var resolver = new DefaultAssemblyResolver();
        resolver.AddSearchDirectory(Path.GetDirectoryName(Path.GetFullPath(assemblyPath))!);
        resolver.AddSearchDirectory(RuntimeEnvironment.GetRuntimeDirectory());
        using var assembly = AssemblyDefinition.ReadAssembly(assemblyPath, new ReaderParameters { AssemblyResolver = resolver, ReadSymbols = false });
        return Analyse(assembly.MainModule, rules);
    }

    private static AnalysisResult Analyse(ModuleDefinition module, LayerRules rules)
    {
        var collector = new Collector(module, rules);
        var unlisted = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
        var foreign = new List<string>();
        var listed = rules.Layers.Select(l => l.Namespace).ToHashSet(StringComparer.Ordinal);
        foreach (var type in module.Types)
        {
            if (!collector.UnderRoot(type.Namespace))
            {
                if (!IsCompilerGenerated(type))
                {
                    foreign.Add(type.FullName);
                }

                continue;
            }

            if (!listed.Contains(type.Namespace))
            {
                if (!unlisted.TryGetValue(type.Namespace, out var types))
                {
                    unlisted[type.Namespace] = types = [];
                }

                if (types.Count < 5)
                {
                    types.Add(type.Name);
                }
            }

            collector.VisitType(type, type, "");
        }

        var index = rules.Layers.Select((l, i) => (l.Namespace, i)).ToDictionary(p => p.Namespace, p => p.i, StringComparer.Ordinal);
        var isSubsystem = rules.Layers.ToDictionary(l => l.Namespace, l => l.IsSubsystem, StringComparer.Ordinal);
        var vocabulary = module.Types
            .Where(t => t.Namespace == rules.RootNamespace && (rules.VocabularyClasses.Contains(t.Name) || (t.IsPublic && (t.IsEnum || IsException(t)))))
            .Select(t => t.FullName)
            .ToHashSet(StringComparer.Ordinal);
        var edgeViolations = new List<Violation>();
        foreach (var edge in collector.Dependencies.GroupBy(d => (d.Source, d.Target)))
        {
            var first = edge.First();
            if (!index.TryGetValue(first.SourceNamespace, out var from) || !index.TryGetValue(first.TargetNamespace, out var to))
            {
                continue;   // reported as an unlisted namespace
            }

            if (to < from)
            {
                continue;
            }

            var fromSubsystem = isSubsystem[first.SourceNamespace];
            if (first.TargetNamespace == rules.RootNamespace && fromSubsystem)
            {
                if (!vocabulary.Contains(first.Target))
                {
                    edgeViolations.Add(new Violation(2, first, edge.Count() - 1));
                    continue;
                }

                // The vocabulary must not close a cycle: what it reaches lies strictly below its user, and is no root class.
                foreach (var exit in VocabularyExits(first.Target))
                {
                    if (exit.TargetNamespace == rules.RootNamespace || !index.TryGetValue(exit.TargetNamespace, out var reached) || reached >= from)
                    {
                        edgeViolations.Add(new Violation(2, first with { Via = $"{first.Via}; {exit.Source} reaches {exit.Target} via {exit.Via}, {(exit.TargetNamespace == rules.RootNamespace ? "a root class outside the vocabulary" : $"not below {first.SourceNamespace}")}" }, edge.Count() - 1));
                    }
                }

                continue;
            }

            edgeViolations.Add(new Violation(1, first, edge.Count() - 1));
        }

        // The references by which the vocabulary (followed through itself) reaches the rest of the assembly.
        IEnumerable<Dependency> VocabularyExits(string start)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal) { start };
            var queue = new Queue<string>([start]);
            var exits = new Dictionary<string, Dependency>(StringComparer.Ordinal);
            while (queue.TryDequeue(out var type))
            {
                foreach (var reference in collector.References.Where(r => r.Source == type && r.Target != type))
                {
                    if (vocabulary.Contains(reference.Target))
                    {
                        if (seen.Add(reference.Target))
                        {
                            queue.Enqueue(reference.Target);
                        }
                    }
                    else
                    {
                        exits.TryAdd(reference.Target, reference);
                    }
                }
            }

            return exits.Values;
        }

        var composerViolations = collector.ComposerMentions
            .Where(d => isSubsystem.TryGetValue(d.SourceNamespace, out var s) && s)
            .GroupBy(d => (d.Source, d.Via))
            .Select(g => new Violation(3, g.First(), 0))
            .ToList();

        return new AnalysisResult
        {
            Dependencies = collector.Dependencies,
            EdgeViolations = edgeViolations.OrderBy(v => v.Rule).ThenBy(v => v.First.Source, StringComparer.Ordinal).ThenBy(v => v.First.Target, StringComparer.Ordinal).ToList(),
            ComposerViolations = composerViolations.OrderBy(v => v.First.Source, StringComparer.Ordinal).ThenBy(v => v.First.Via, StringComparer.Ordinal).ToList(),
            Namespaces = module.Types.Select(t => t.Namespace).Where(collector.UnderRoot).Distinct().Order(StringComparer.Ordinal).ToList(),
            UnlistedNamespaces = unlisted.ToDictionary(p => p.Key, p => (IReadOnlyList<string>)p.Value, StringComparer.Ordinal),
            RootVocabulary = vocabulary.Order(StringComparer.Ordinal).ToList(),
            ForeignTypes = foreign,
        };
    }

    private static bool IsException(TypeDefinition type)
    {
        try
        {
            for (var baseType = type.BaseType; baseType is not null; baseType = baseType.Resolve()?.BaseType)
            {
                if (baseType.FullName == "System.Exception")
                {
                    return true;
                }
            }
        }
        catch (AssemblyResolutionException)
        {
            // A base type in an assembly not found: not an exception we can prove.
        }

        return false;
    }

    private static bool IsCompilerGenerated(TypeDefinition type)
        => type.Name.StartsWith('<')
           || type.CustomAttributes.Any(a => a.AttributeType.FullName is "System.Runtime.CompilerServices.CompilerGeneratedAttribute" or "Microsoft.CodeAnalysis.EmbeddedAttribute");

    private sealed class Collector(ModuleDefinition module, LayerRules rules)
    {
        /// <summary>References between different namespaces under the root.</summary>
        public List<Dependency> Dependencies { get; } = [];

        /// <summary>Every reference between different types under the root, in one namespace or two.</summary>
        public List<Dependency> References { get; } = [];

        public List<Dependency> ComposerMentions { get; } = [];

        public bool UnderRoot(string ns)
            => ns == rules.RootNamespace || ns.StartsWith(rules.RootNamespace + ".", StringComparison.Ordinal);

        /// <summary>Visits <paramref name="type"/>, whose outermost declaring type is <paramref name="owner"/>; <paramref name="path"/> names it from there ("" for the owner itself, "Inner." for a nested type).</summary>
        public void VisitType(TypeDefinition type, TypeDefinition owner, string path)
        {
            var where = path.Length == 0 ? "" : $"nested {path.TrimEnd('.')}: ";
            Attributes(owner, type.CustomAttributes, $"{where}attribute on the type");
            if (type.BaseType is not null)
            {
                Reference(owner, type.BaseType, $"{where}base type");
            }

            foreach (var implemented in type.Interfaces)
            {
                Reference(owner, implemented.InterfaceType, $"{where}interface {Display(implemented.InterfaceType)}");
            }

            GenericParameters(owner, type.GenericParameters, where.Length == 0 ? "type" : where.TrimEnd(' ', ':'));

            foreach (var field in type.Fields)
            {
                // An auto-property's backing field "<Name>k__BackingField" is reported as the property.
                var member = field.Name.StartsWith('<') && field.Name.EndsWith(">k__BackingField", StringComparison.Ordinal)
                    ? $"property {path}{field.Name[1..field.Name.IndexOf('>', StringComparison.Ordinal)]}"
                    : $"field {path}{field.Name}";
                Signature(owner, field.FieldType, member);
                Attributes(owner, field.CustomAttributes, $"attribute on {member}");
            }

            foreach (var property in type.Properties)
            {
                Signature(owner, property.PropertyType, $"property {path}{property.Name}");
                foreach (var parameter in property.Parameters)
                {
                    Signature(owner, parameter.ParameterType, $"indexer {path}{property.Name} parameter {parameter.Name}");
                }

                Attributes(owner, property.CustomAttributes, $"attribute on property {path}{property.Name}");
            }

            foreach (var @event in type.Events)
            {
                Signature(owner, @event.EventType, $"event {path}{@event.Name}");
                Attributes(owner, @event.CustomAttributes, $"attribute on event {path}{@event.Name}");
            }

            foreach (var method in type.Methods)
            {
                VisitMethod(owner, method, $"{path}{method.Name}");
            }

            foreach (var nested in type.NestedTypes)
            {
                VisitType(nested, owner, $"{path}{nested.Name}.");
            }
        }

        private void VisitMethod(TypeDefinition owner, MethodDefinition method, string name)
        {
            Signature(owner, method.ReturnType, $"method {name} return type");
            foreach (var parameter in method.Parameters)
            {
                Signature(owner, parameter.ParameterType, $"method {name} parameter {parameter.Name}");
                Attributes(owner, parameter.CustomAttributes, $"attribute on method {name} parameter {parameter.Name}");
            }

            GenericParameters(owner, method.GenericParameters, $"method {name}");
            Attributes(owner, method.CustomAttributes, $"attribute on method {name}");
            Attributes(owner, method.MethodReturnType.CustomAttributes, $"attribute on method {name} return");
            foreach (var @override in method.Overrides)
            {
                Member(owner, @override, $"method {name} overrides {Display(@override)}");
            }

            if (!method.HasBody)
            {
                return;
            }

            var body = method.Body;
            foreach (var local in body.Variables)
            {
                Reference(owner, local.VariableType, $"method {name} local variable of type {Display(local.VariableType)}");
            }

            foreach (var handler in body.ExceptionHandlers)
            {
                if (handler.CatchType is not null)
                {
                    Reference(owner, handler.CatchType, $"method {name} catch {Display(handler.CatchType)}");
                }
            }

            foreach (var instruction in body.Instructions)
            {
                switch (instruction.Operand)
                {
                    case TypeReference type:
                        Reference(owner, type, $"method {name}: {instruction.OpCode.Name} {Display(type)}");
                        break;
                    case MemberReference member:
                        Member(owner, member, $"method {name}: {instruction.OpCode.Name} {Display(member)}");
                        break;
                    case CallSite site:
                        Reference(owner, site.ReturnType, $"method {name}: calli");
                        foreach (var parameter in site.Parameters)
                        {
                            Reference(owner, parameter.ParameterType, $"method {name}: calli");
                        }

                        break;
                }
            }
        }

        private void Member(TypeDefinition owner, MemberReference member, string via)
        {
            switch (member)
            {
                case GenericInstanceMethod generic:
                    Member(owner, generic.ElementMethod, via);
                    foreach (var argument in generic.GenericArguments)
                    {
                        Reference(owner, argument, via);
                    }

                    break;
                case MethodReference method:
                    Reference(owner, method.DeclaringType, via);
                    Reference(owner, method.ReturnType, via);
                    foreach (var parameter in method.Parameters)
                    {
                        Reference(owner, parameter.ParameterType, via);
                    }

                    break;
                case FieldReference field:
                    Reference(owner, field.DeclaringType, via);
                    Reference(owner, field.FieldType, via);
                    break;
                case TypeReference type:
                    Reference(owner, type, via);
                    break;
                default:
                    if (member.DeclaringType is not null)
                    {
                        Reference(owner, member.DeclaringType, via);
                    }

                    break;
            }
        }

        private void GenericParameters(TypeDefinition owner, IEnumerable<GenericParameter> parameters, string where)
        {
            foreach (var parameter in parameters)
            {
                foreach (var constraint in parameter.Constraints)
                {
                    Reference(owner, constraint.ConstraintType, $"{where} generic constraint {parameter.Name} : {Display(constraint.ConstraintType)}");
                }

                Attributes(owner, parameter.CustomAttributes, $"{where} attribute on generic parameter {parameter.Name}");
            }
        }

        private void Attributes(TypeDefinition owner, IEnumerable<CustomAttribute> attributes, string via)
        {
            foreach (var attribute in attributes)
            {
                Reference(owner, attribute.AttributeType, $"{via} [{Display(attribute.AttributeType)}]");
                IEnumerable<CustomAttributeArgument> arguments;
                try
                {
                    arguments = attribute.ConstructorArguments
                        .Concat(attribute.Fields.Select(f => f.Argument))
                        .Concat(attribute.Properties.Select(p => p.Argument))
                        .ToList();
                }
                catch (AssemblyResolutionException)
                {
                    continue;   // an argument of an enum type from an assembly not found: no typeof in it matters here
                }

                foreach (var argument in arguments)
                {
                    AttributeArgument(owner, argument, $"{via} [{Display(attribute.AttributeType)}(typeof(...))]");
                }
            }
        }

        private void AttributeArgument(TypeDefinition owner, CustomAttributeArgument argument, string via)
        {
            switch (argument.Value)
            {
                case TypeReference type:
                    Reference(owner, type, via);
                    break;
                case CustomAttributeArgument boxed:
                    AttributeArgument(owner, boxed, via);
                    break;
                case CustomAttributeArgument[] array:
                    foreach (var element in array)
                    {
                        AttributeArgument(owner, element, via);
                    }

                    break;
            }
        }

        /// <summary>A member's declared type: a reference, and for rule 3 a mention of the composer.</summary>
        private void Signature(TypeDefinition owner, TypeReference type, string via)
        {
            Reference(owner, type, via);
            foreach (var named in NamedTypes(type))
            {
                if (InModule(named) && Outermost(named).FullName == rules.Composer)
                {
                    ComposerMentions.Add(new Dependency(owner.Namespace, owner.FullName, Outermost(named).Namespace, rules.Composer, via));
                }
            }
        }

        private void Reference(TypeDefinition owner, TypeReference type, string via)
        {
            foreach (var named in NamedTypes(type))
            {
                if (!InModule(named))
                {
                    continue;   // the BCL, Engine.Sync: always allowed
                }

                var target = Outermost(named);
                if (!UnderRoot(target.Namespace) || target.FullName == owner.FullName)
                {
                    continue;
                }

                var dependency = new Dependency(owner.Namespace, owner.FullName, target.Namespace, target.FullName, via);
                References.Add(dependency);
                if (target.Namespace != owner.Namespace)
                {
                    Dependencies.Add(dependency);
                }
            }
        }

        private bool InModule(TypeReference type)
            => type is TypeDefinition definition ? definition.Module == module : type.Scope is ModuleDefinition scope && scope == module;

        private static TypeReference Outermost(TypeReference type)
        {
            while (type.DeclaringType is not null)
            {
                type = type.DeclaringType;
            }

            return type;
        }

        /// <summary>The named types in a type expression: the element of arrays, pointers, by-refs and modifiers, a generic type and its arguments.</summary>
        private static IEnumerable<TypeReference> NamedTypes(TypeReference type)
        {
            switch (type)
            {
                case GenericParameter:
                    yield break;
                case GenericInstanceType generic:
                    foreach (var named in NamedTypes(generic.ElementType))
                    {
                        yield return named;
                    }

                    foreach (var argument in generic.GenericArguments)
                    {
                        foreach (var named in NamedTypes(argument))
                        {
                            yield return named;
                        }
                    }

                    break;
                case IModifierType modified:
                    foreach (var named in NamedTypes(modified.ModifierType).Concat(NamedTypes(modified.ElementType)))
                    {
                        yield return named;
                    }

                    break;
                case FunctionPointerType pointer:
                    foreach (var named in NamedTypes(pointer.ReturnType).Concat(pointer.Parameters.SelectMany(p => NamedTypes(p.ParameterType))))
                    {
                        yield return named;
                    }

                    break;
                case TypeSpecification specification:   // arrays, pointers, by-refs, pinned, sentinels
                    foreach (var named in NamedTypes(specification.ElementType))
                    {
                        yield return named;
                    }

                    break;
                default:
                    yield return type;
                    break;
            }
        }

        private static string Display(TypeReference type) => type switch
        {
            GenericInstanceType generic => $"{Display(generic.ElementType).Split('`')[0]}<{string.Join(", ", generic.GenericArguments.Select(Display))}>",
            _ when type.DeclaringType is not null => $"{Display(type.DeclaringType)}.{type.Name}",
            _ => type.Name,
        };

        private static string Display(MemberReference member) => member switch
        {
            GenericInstanceMethod generic => $"{Display(generic.ElementMethod)}<{string.Join(", ", generic.GenericArguments.Select(Display))}>",
            TypeReference type => Display(type),
            _ when member.DeclaringType is not null => $"{Display(member.DeclaringType)}::{member.Name}",
            _ => member.Name,
        };
    }
}
