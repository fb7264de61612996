// References the built Trd.Core and Trd.Runtime from a script. Build them first:
//   dotnet build src/Trd.Runtime -c Release
// and load TorchSharp before this file:
//   #r "nuget: TorchSharp, 0.107.0"
//   #r "nuget: libtorch-cpu-linux-x64, 2.10.0"
//   #load "LoadTorchSharp.fsx"
//   #load "Trd.fsx"
#r "nuget: Microsoft.ML.Tokenizers, 2.0.1"   // Qwen3's tokenizer (and the gym's, which is built the same way)
#r "nuget: Parquet.Net, 6.1.0"               // the corpus's verl export
#r "../src/Trd.Runtime/bin/Release/net10.0/linux-x64/Trd.Core.dll"
#r "../src/Trd.Runtime/bin/Release/net10.0/linux-x64/Trd.Runtime.dll"
