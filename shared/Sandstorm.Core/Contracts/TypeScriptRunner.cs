namespace Sandstorm.Core.Contracts;

/// <summary>
/// The small Node.js program that runs a TypeScript file offline: it loads the system's TypeScript compiler
/// (<see cref="Languages.TypeScriptCompiler"/>), transpiles the file to CommonJS (syntax errors are reported with their
/// position and exit 1; types are not checked, as with tsx or Bun), makes <c>require</c> of other <c>.ts</c> files
/// transpile them too, and runs the file as the main module with source maps on, so stack traces name the TypeScript
/// lines. Top-level <c>await</c> works: a main file that needs it runs inside an async function.
/// </summary>
public static class TypeScriptRunner
{
    /// <summary>The runner's source, passed to <c>node -e</c> with the file to run as its argument.</summary>
    public const string Source = $$"""
        'use strict';
        const fs = require('fs'), path = require('path'), Module = require('module'), vm = require('vm');
        const ts = require('{{Languages.TypeScriptCompiler}}');
        process.setSourceMapsEnabled(true);
        const compilerOptions = { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, inlineSourceMap: true };
        function transpile(file) {
          const out = ts.transpileModule(fs.readFileSync(file, 'utf8'), { fileName: file, compilerOptions, reportDiagnostics: true });
          const errors = (out.diagnostics || []).filter((d) => d.category === ts.DiagnosticCategory.Error);
          for (const d of errors) {
            const at = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : null;
            process.stderr.write(`${path.basename(file)}${at ? `(${at.line + 1},${at.character + 1})` : ''}: error TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}\n`);
          }
          if (errors.length > 0) process.exit(1);
          return out.outputText;
        }
        for (const extension of ['.ts', '.mts', '.cts']) {
          Module._extensions[extension] = (m, file) => m._compile(transpile(file), file);
        }
        const main = path.resolve(process.argv[1]);
        process.argv[1] = main;
        let js = transpile(main);
        try {
          new vm.Script(Module.wrap(js), { filename: main });
        } catch (e) {
          if (e instanceof SyntaxError && /await is only valid/.test(e.message)) {
            js = '(async () => {' + js + '\n})().catch((e) => { console.error(e); process.exitCode = 1; });';
          }
        }
        const m = new Module(main, null);
        m.filename = main;
        m.paths = Module._nodeModulePaths(path.dirname(main));
        require.main = m;
        process.mainModule = m;
        m._compile(js, main);
        """;
}
