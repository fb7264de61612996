module Trd.Tests.ScriptTests
