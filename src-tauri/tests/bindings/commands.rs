//! The UI's command wrappers (`ui/src/bindings/commands.ts`), generated from the command
//! functions themselves (`src/commands.rs`): each `#[tauri::command]`'s name, arguments and
//! result type are read from its signature, so a command's name and types live in one place.
//!
//! A command with more than three arguments takes them as one named object (no two strings
//! can be swapped by position); a `Channel<T>` argument becomes a callback, last.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use syn::{FnArg, GenericArgument, Item, Pat, PathArguments, ReturnType, Type};

/// Arguments Tauri fills in itself: never sent by the UI.
const INJECTED: &[&str] = &["State", "AppHandle", "Window", "Webview", "WebviewWindow"];

/// One command as the UI sees it.
struct Command {
    name: String,
    doc: Vec<String>,
    args: Vec<(String, String)>,
    /// A `Channel<T>` argument: its name and `T`.
    progress: Option<(String, String)>,
    returns: String,
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) => p.path.segments.last(),
        Type::Reference(r) => last_segment(&r.elem),
        _ => None,
    }
}

fn type_args(seg: &syn::PathSegment) -> Vec<&Type> {
    match &seg.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|g| match g {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The TypeScript type of a Rust argument or result; named types are the generated bindings
/// (collected in `named`, to import). A type with no TypeScript form fails the test.
fn ts_type(ty: &Type, named: &mut BTreeSet<String>, command: &str) -> String {
    if let Type::Tuple(t) = ty
        && t.elems.is_empty()
    {
        return "null".into();
    }
    let Some(seg) = last_segment(ty) else {
        panic!("command {command}: argument or result type {} has no TypeScript form", quote(ty));
    };
    let args = type_args(seg);
    let ident = seg.ident.to_string();
    match (ident.as_str(), args.as_slice()) {
        ("String" | "str", []) => "string".into(),
        ("bool", []) => "boolean".into(),
        ("u8" | "u16" | "u32" | "i8" | "i16" | "i32" | "f32" | "f64", []) => "number".into(),
        ("Option", [inner]) => format!("{} | null", ts_type(inner, named, command)),
        ("Vec", [inner]) => format!("Array<{}>", ts_type(inner, named, command)),
        ("BTreeMap" | "HashMap", [key, value]) => {
            assert_eq!(ts_type(key, named, command), "string", "command {command}: map keys must be strings");
            format!("Record<string, {}>", ts_type(value, named, command))
        }
        (name, []) if name.chars().next().is_some_and(char::is_uppercase) => {
            named.insert(name.to_owned());
            name.to_owned()
        }
        _ => panic!("command {command}: type {} has no TypeScript form here", quote(ty)),
    }
}

fn quote(ty: &Type) -> String {
    use quote::ToTokens;
    ty.to_token_stream().to_string()
}

fn doc_lines(attrs: &[syn::Attribute]) -> Vec<String> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn is_command(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        let segs: Vec<String> = a.path().segments.iter().map(|s| s.ident.to_string()).collect();
        segs == ["tauri", "command"]
    })
}

fn read(source: &str, named: &mut BTreeSet<String>) -> Vec<Command> {
    let file = syn::parse_file(source).expect("src/commands.rs parses");
    let mut out = Vec::new();
    for item in file.items {
        let Item::Fn(f) = item else { continue };
        if !is_command(&f.attrs) {
            continue;
        }
        let name = f.sig.ident.to_string();
        let mut command = Command {
            name: name.clone(),
            doc: doc_lines(&f.attrs),
            args: Vec::new(),
            progress: None,
            returns: String::new(),
        };
        for input in &f.sig.inputs {
            let FnArg::Typed(arg) = input else { panic!("command {name}: a method, not a function") };
            let Pat::Ident(ident) = arg.pat.as_ref() else { panic!("command {name}: arguments must be plain names") };
            let seg = last_segment(&arg.ty).unwrap_or_else(|| panic!("command {name}: unnamed argument type"));
            if INJECTED.contains(&seg.ident.to_string().as_str()) {
                continue;
            }
            if seg.ident == "Channel" {
                let [inner] = type_args(seg)[..] else { panic!("command {name}: Channel<T> expected") };
                assert!(command.progress.is_none(), "command {name}: one channel at most");
                command.progress = Some((camel(&ident.ident.to_string()), ts_type(inner, named, &name)));
                continue;
            }
            command.args.push((camel(&ident.ident.to_string()), ts_type(&arg.ty, named, &name)));
        }
        command.returns = match &f.sig.output {
            ReturnType::Default => "null".into(),
            ReturnType::Type(_, ty) => {
                let seg = last_segment(ty).unwrap_or_else(|| panic!("command {name}: unnamed result type"));
                match (seg.ident.to_string().as_str(), type_args(seg).as_slice()) {
                    ("Res", [ok]) | ("Result", [ok, _]) => ts_type(ok, named, &name),
                    _ => ts_type(ty, named, &name),
                }
            }
        };
        out.push(command);
    }
    out
}

/// `commands.ts` for the command functions in `source`, in the order of `listed` (the one
/// command list); fails when the two disagree.
pub fn generate(source: &str, listed: &[&str]) -> String {
    let mut named = BTreeSet::new();
    let commands = read(source, &mut named);
    let found: Vec<&str> = commands.iter().map(|c| c.name.as_str()).collect();
    let mut sorted_found = found.clone();
    let mut sorted_listed = listed.to_vec();
    sorted_found.sort_unstable();
    sorted_listed.sort_unstable();
    assert_eq!(
        sorted_found, sorted_listed,
        "the #[tauri::command] functions of src/commands.rs and the names in src/command_list.rs differ"
    );
    let mut ts = String::from(
        "// Generated from src-tauri/src/commands.rs by src-tauri/tests/bindings. Do not edit this file manually.\n\
         // Every command fails with an AppError { code, message, next_step }.\n",
    );
    ts.push_str("import { call, channel } from \"../lib/ipc\";\n");
    for name in &named {
        writeln!(ts, "import type {{ {name} }} from \"./{name}\";").unwrap();
    }
    ts.push_str("\nexport const commands = {\n");
    for name in listed {
        let c = commands.iter().find(|c| c.name == *name).expect("checked above");
        if !c.doc.is_empty() {
            writeln!(ts, "  /** {} */", c.doc.join(" ")).unwrap();
        }
        let by_object = c.args.len() > 3;
        let mut params: Vec<String> = if by_object {
            let fields: Vec<String> = c.args.iter().map(|(n, t)| format!("{n}: {t}")).collect();
            vec![format!("a: {{ {} }}", fields.join("; "))]
        } else {
            c.args.iter().map(|(n, t)| format!("{n}: {t}")).collect()
        };
        let mut sent: Vec<String> =
            if by_object { vec!["...a".into()] } else { c.args.iter().map(|(n, _)| n.clone()).collect() };
        if let Some((arg, p)) = &c.progress {
            params.push(format!("{arg}: (p: {p}) => void"));
            sent.push(format!("{arg}: channel({arg})"));
        }
        let body = match (by_object, c.progress.is_some(), sent.is_empty()) {
            (true, false, _) => ", a".to_owned(),
            (_, _, true) => String::new(),
            _ => format!(", {{ {} }}", sent.join(", ")),
        };
        writeln!(ts, "  {}: ({}) => call<{}>(\"{}\"{body}),", camel(name), params.join(", "), c.returns, c.name)
            .unwrap();
    }
    ts.push_str("};\n");
    ts
}
