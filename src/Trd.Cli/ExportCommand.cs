using System.CommandLine;
using Trd.Runtime.Export;

namespace Trd.Cli;

/// <summary>trd export gguf: a model directory (and a LoRA adapter) as one GGUF file for llama.cpp, Ollama, LM Studio.</summary>
static class ExportCommand
{
    public static Command Create()
    {
        var export = new Command("export", "Write a model in another format (gguf: for llama.cpp, Ollama, LM Studio).");
        export.Add(Gguf());
        return export;
    }

    static Command Gguf()
    {
        var model = new Option<DirectoryInfo>("--model", "-m") { Description = "A Hugging Face Qwen3 model directory (config.json, safetensors, tokenizer.json).", Required = true };
        var adapter = new Option<DirectoryInfo?>("--adapter") { Description = "A PEFT LoRA adapter directory to merge into the weights." };
        var output = new Option<FileInfo>("--out", "-o") { Description = "The GGUF file to write.", Required = true };
        var dtype = new Option<string>("--dtype")
        {
            Description = "The weight matrices' type: f32, f16, bf16 or q8_0 (norms stay f32).", DefaultValueFactory = _ => "f32",
        };
        dtype.AcceptOnlyFromAmong([.. GgufDTypes.Words]);
        var tokenizer = new Option<DirectoryInfo?>("--tokenizer")
        {
            Description = "Read tokenizer.json, tokenizer_config.json and chat_template.jinja from this directory (e.g. the base model's: a training checkpoint's model directory has none).",
        };
        var name = new Option<string?>("--name") { Description = "general.name in the file (default: the model directory's name)." };
        var force = new Option<bool>("--force") { Description = "Replace the --out file when it exists (otherwise an existing file is an error)." };
        var command = new Command("gguf", "Write a Qwen3 model directory as a GGUF v3 file llama.cpp loads (qwen3 architecture, tokenizer, chat template).")
            { model, adapter, tokenizer, output, dtype, name, force };
        Cli.Examples(command, "trd export gguf -m ~/models/Qwen3-1.7B --adapter runs/opd/train/checkpoints/step-000040/adapter -o student.gguf",
            "trd export gguf -m runs/full/train/checkpoints/step-000040/model --tokenizer ~/models/Qwen3-1.7B -o student-q8.gguf --dtype q8_0");
        command.SetAction(parse => Cli.Guard(() =>
        {
            var path = parse.GetRequiredValue(output).FullName;
            if (File.Exists(path) && !parse.GetValue(force)) throw new ArgumentException($"--out {path} exists; pass --force to replace it");
            if (Directory.Exists(path)) throw new ArgumentException($"--out {path} is a directory; give a file name (e.g. model.gguf)");
            GgufDTypes.TryParse(parse.GetValue(dtype)!, out var type);
            var started = DateTime.UtcNow;
            var summary = Qwen3Gguf.Export(parse.GetRequiredValue(model).FullName, path, type, parse.GetValue(adapter)?.FullName, parse.GetValue(name),
                parse.GetValue(tokenizer)?.FullName);
            Console.WriteLine($"{summary.Path}: GGUF v3, qwen3, {summary.Tensors} tensors, {GgufDTypes.Word(summary.DType)}, {summary.Bytes / 1048576.0:F1} MiB, " +
                              $"{(DateTime.UtcNow - started).TotalSeconds:F1} s");
            Console.WriteLine($"  vocabulary {summary.Vocabulary:N0} ids ({summary.TokenizerTokens:N0} tokens, {summary.Vocabulary - summary.TokenizerTokens:N0} padding)" +
                              (summary.MergedAdapters > 0 ? $"; LoRA merged into {summary.MergedAdapters} matrices" : "") +
                              (summary.Float16Fallbacks > 0 ? $"; {summary.Float16Fallbacks} matrices written f16 (rows not whole Q8_0 blocks of 32)" : ""));
            Console.WriteLine($"  chat template: {summary.ChatTemplateSource}");
        }));
        return command;
    }
}
