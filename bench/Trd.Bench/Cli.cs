namespace Trd.Bench;

/// <summary>Command line: an optional command word (one, floors) then --name value pairs and --flags.</summary>
sealed class Cli
{
    public string Command { get; private init; } = "suite";
    readonly Dictionary<string, string> _values = new();

    public static Cli Parse(string[] args)
    {
        var start = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? 1 : 0;
        var cli = new Cli { Command = start == 1 ? args[0] : "suite" };
        for (var i = start; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
                throw new ArgumentException($"unexpected argument '{args[i]}' (options are --name value or --flag)");
            var name = args[i][2..];
            var hasValue = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal);
            cli._values[name] = hasValue ? args[++i] : "true";
        }
        return cli;
    }

    public string Get(string name, string fallback) => _values.TryGetValue(name, out var v) ? v : fallback;
    public bool Has(string name) => _values.ContainsKey(name);
}
