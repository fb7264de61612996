using System.CommandLine;
using Trd.Runtime;
using Trd.Runtime.Generation;
using Trd.Runtime.Models;
using Trd.Runtime.Pipeline;
using Trd.Runtime.Tokenization;

namespace Trd.Cli;

/// <summary>tokenize and generate: look inside a model directory.</summary>
static class ToolCommands
{
    /// <summary>
    /// The text of a tokenize or generate command: the argument as written (never read as a file name, not even
    /// "@name"), the contents of --text-file, or standard input for "-".
    /// </summary>
    static string Text(string? argument, FileInfo? file, string what)
    {
        if (file is not null && argument is not null) throw new ArgumentException($"give {what} or --text-file, not both");
        if (file is not null)
        {
            if (!file.Exists) throw new FileNotFoundException($"--text-file {file.FullName}: no such file");
            return File.ReadAllText(file.FullName);
        }
        if (argument is null) throw new ArgumentException($"give {what}, --text-file PATH, or - to read standard input");
        return argument == "-" ? Console.In.ReadToEnd() : argument;
    }

    public static Command Tokenize()
    {
        var model = new Option<DirectoryInfo>("--model", "-m") { Description = "A model directory holding tokenizer.json.", Required = true };
        var idsOnly = new Option<bool>("--ids-only") { Description = "Print only the ids, whitespace-separated." };
        var textFile = new Option<FileInfo?>("--text-file") { Description = "Encode this file's contents instead of TEXT." };
        var text = new Argument<string?>("TEXT")
        {
            Description = "The text to encode, as written (\"@x\" is text, not a file); - reads standard input. Text that starts with - goes after --: trd tokenize -m M -- \"-5 + 3\".",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var command = new Command("tokenize", "The token ids and pieces of TEXT under a model directory's tokenizer.") { model, idsOnly, textFile, text };
        Cli.Examples(command, "trd tokenize -m ~/models/Qwen3-1.7B \"Wait, 12+7=19.\"", "trd tokenize -m ~/models/Qwen3-1.7B --ids-only --text-file prompt.txt");
        command.SetAction(parse => Cli.Guard(() =>
        {
            var input = Text(parse.GetValue(text), parse.GetValue(textFile), "TEXT");
            var tokenizer = Qwen3Tokenizer.FromDirectory(parse.GetRequiredValue(model).FullName);
            var ids = tokenizer.Encode(input);
            if (parse.GetValue(idsOnly)) { Console.WriteLine(string.Join(' ', ids)); return; }
            foreach (var id in ids)
                Console.WriteLine($"{id}\t{System.Text.Json.JsonSerializer.Serialize(tokenizer.Decode(new[] { id }))}");
            Console.Error.WriteLine($"{ids.Length} tokens");
        }));
        return command;
    }

    public static Command Generate()
    {
        var model = new Option<DirectoryInfo>("--model", "-m") { Description = "A Hugging Face Qwen3 model directory.", Required = true };
        var prompt = new Argument<string?>("PROMPT")
        {
            Description = "The user message (chat-templated unless --raw), as written; - reads standard input. Text that starts with - goes after --.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var textFile = new Option<FileInfo?>("--text-file") { Description = "Use this file's contents as PROMPT." };
        var raw = new Option<bool>("--raw") { Description = "Continue PROMPT as plain text, without the chat template." };
        var samples = new Option<int>("--samples", "-n") { Description = "Samples to draw.", DefaultValueFactory = _ => 1 };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Response budget in tokens.", DefaultValueFactory = _ => 256 };
        var temperature = new Option<double>("--temperature", "-t") { Description = "Sampling temperature (0: greedy).", DefaultValueFactory = _ => 0.6 };
        var topP = new Option<double>("--top-p") { Description = "Nucleus mass.", DefaultValueFactory = _ => 0.95 };
        var topK = new Option<int>("--top-k") { Description = "Top-k (0: off).", DefaultValueFactory = _ => 20 };
        var seed = new Option<long>("--seed") { Description = "Sampling seed.", DefaultValueFactory = _ => 0 };
        var thinking = new Option<bool>("--thinking") { Description = "Qwen3 thinking mode in the chat template (Qwen3's own; the Qwen3-2507 templates ignore it)." };
        var device = new Option<string?>("--device") { Description = "Torch device (cpu, cuda, cuda:1); default: TRD_DEVICE or the best available." };
        var command = new Command("generate", "Sample responses from a model directory.") { model, prompt, textFile, raw, samples, maxNew, temperature, topP, topK, seed, thinking, device };
        Cli.Examples(command, "trd generate -m ~/models/Qwen3-1.7B \"Compute 12 + 7 + 30.\" -n 4",
            "trd generate -m ~/models/Qwen3-1.7B --raw --max-new-tokens 32 -t 0 \"The capital of France is\"");
        command.SetAction(parse => Cli.Guard(() =>
        {
            var text = Text(parse.GetValue(prompt), parse.GetValue(textFile), "PROMPT");
            var on = parse.GetValue(device) is { } d ? Devices.Parse(d) : Devices.Default;
            // The sampling options are checked before the model is read: a bad --top-k costs nothing.
            new SamplingOptions
            {
                Temperature = parse.GetValue(temperature), TopP = parse.GetValue(topP), TopK = parse.GetValue(topK),
                MaxNewTokens = parse.GetValue(maxNew), SamplesPerPrompt = parse.GetValue(samples),
            }.Validate();
            var loaded = ModelStore.Load(parse.GetRequiredValue(model).FullName, on);
            using var _ = loaded.Model;
            var ids = parse.GetValue(raw) ? loaded.Tokenizer.Encode(text)
                : new PromptBuilder(loaded.Tokenizer, parse.GetValue(thinking)).Encode(text);
            if ((long)ids.Length + parse.GetValue(maxNew) > loaded.Model.Config.MaxPositionEmbeddings)
                throw new ArgumentException($"--max-new-tokens {parse.GetValue(maxNew):N0}: with the prompt's {ids.Length:N0} tokens that is more than the model's max_position_embeddings ({loaded.Model.Config.MaxPositionEmbeddings:N0})");
            var options = new SamplingOptions
            {
                Temperature = parse.GetValue(temperature), TopP = parse.GetValue(topP), TopK = parse.GetValue(topK),
                MaxNewTokens = parse.GetValue(maxNew), SamplesPerPrompt = parse.GetValue(samples), Seed = parse.GetValue(seed),
                StopTokenIds = loaded.Tokenizer.StopIds, VocabularyLimit = loaded.Tokenizer.VocabularySize,
            };
            foreach (var (s, i) in Sampler.Generate(loaded.Model, new[] { ids }, options).Select((s, i) => (s, i)))
            {
                if (options.SamplesPerPrompt > 1) Console.WriteLine($"--- sample {i + 1}{(s.Truncated ? " (truncated)" : "")}");
                Console.WriteLine(loaded.Tokenizer.Decode(s.Tokens, skipSpecialTokens: true));
            }
        }));
        return command;
    }
}
