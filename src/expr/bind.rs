//! The binder: resolves every name of a parsed expression against the
//! allowed surface before it may run.
//!
//! - simple names must be locals, lambda parameters, `out var`s, local
//!   functions, `context`, or allowed types;
//! - `context.…` chains are typed through the object model
//!   ([`lib::host::MODEL`]) and checked member by member;
//! - static members are checked against their type's list; members of
//!   values whose type is only known at run time must exist on some
//!   allowed type;
//! - types in `new`, casts, `is`/`as`, declarations and generic arguments
//!   must be allowed types.
//!
//! Binding also records what an expression reads (the request or response
//! body), so the gateway buffers bodies only when a policy needs them.

use super::ast::*;
use super::eval::dotted;
use super::lib;
use super::parser::Code;
use super::Span;
use std::collections::HashSet;
use std::sync::OnceLock;

/// A member or name that is not allowed, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindError {
    pub message: String,
    pub span: Span,
}

/// What binding learnt about an expression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    pub reads_request_body: bool,
    pub reads_response_body: bool,
}

/// The static type of an expression, as far as the binder follows it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    /// Known only at run time.
    Dyn,
    /// A string.
    Str,
    /// A context-model interface (`IRequest`, ...).
    Model(&'static str),
    /// A type name used as a value (`DateTime` in `DateTime.UtcNow`).
    Type(&'static str),
}

/// Model interfaces that may appear in casts and declarations.
const MODEL_TYPES: &[&str] = &[
    "IResponse",
    "IRequest",
    "IMessageBody",
    "IUrl",
    "IProxyContext",
    "IContext",
    "IApi",
    "IOperation",
    "IProduct",
    "ISubscription",
    "IUser",
    "IGroup",
    "IDeployment",
    "ILastError",
    "X509Certificate2",
    "X509Certificate",
];

fn union() -> &'static HashSet<&'static str> {
    static U: OnceLock<HashSet<&'static str>> = OnceLock::new();
    U.get_or_init(|| lib::instance_members().collect())
}

fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// ` (did you mean 'X'?)` when a known name is close.
fn hint<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let best = known
        .map(|k| (distance(name, k), k))
        .filter(|(d, k)| *d <= 2.max(name.len() / 4) && *k != name)
        .min();
    match best {
        Some((_, k)) => format!(" (did you mean '{k}'?)"),
        None => String::new(),
    }
}

struct Binder {
    scopes: Vec<Vec<(String, Ty)>>,
    errors: Vec<BindError>,
    facts: Facts,
}

/// Binds parsed code; every problem is reported, not just the first.
pub fn bind(code: &Code) -> Result<Facts, Vec<BindError>> {
    let mut b = Binder {
        scopes: vec![Vec::new()],
        errors: Vec::new(),
        facts: Facts::default(),
    };
    match code {
        Code::Expr(e) => {
            b.expr(e);
        }
        Code::Block(stmts) => b.block(stmts),
    }
    if b.errors.is_empty() {
        Ok(b.facts)
    } else {
        Err(b.errors)
    }
}

impl Binder {
    fn error(&mut self, span: Span, message: String) {
        self.errors.push(BindError { message, span });
    }

    fn declare(&mut self, name: &str, ty: Ty) {
        if let Some(s) = self.scopes.last_mut() {
            s.push((name.to_string(), ty));
        }
    }

    fn local(&self, name: &str) -> Option<Ty> {
        self.scopes
            .iter()
            .rev()
            .flat_map(|s| s.iter().rev())
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t)
    }

    fn locals(&self) -> Vec<String> {
        self.scopes
            .iter()
            .flatten()
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn push(&mut self) {
        self.scopes.push(Vec::new());
    }

    fn pop(&mut self) {
        self.scopes.pop();
    }

    /// Checks a written type; returns its canonical name.
    fn type_ref(&mut self, t: &TypeRef) -> Option<&'static str> {
        for a in &t.args {
            self.type_ref(a);
        }
        if let Some(c) = lib::resolve_type(&t.name) {
            return Some(c);
        }
        let short = t.name.rsplit('.').next().unwrap_or(&t.name);
        if let Some(m) = MODEL_TYPES.iter().find(|m| **m == short) {
            return Some(m);
        }
        let known = super::lib::known_type_names();
        self.error(
            t.span,
            format!(
                "the type '{}' is not allowed in policy expressions{}",
                t.name,
                hint(&t.name, known.iter().copied())
            ),
        );
        None
    }

    fn block(&mut self, stmts: &[Stmt]) {
        self.push();
        for s in stmts {
            if let StmtKind::LocalFunction { name, .. } = &s.kind {
                self.declare(name, Ty::Dyn);
            }
        }
        for s in stmts {
            self.stmt(s);
        }
        self.pop();
    }

    fn scoped(&mut self, s: &Stmt) {
        self.push();
        self.stmt(s);
        self.pop();
    }

    fn stmt(&mut self, s: &Stmt) {
        match &s.kind {
            StmtKind::Block(b) => self.block(b),
            StmtKind::Local { ty, vars } => {
                let declared = ty.as_ref().and_then(|t| self.type_ref(t));
                for (name, init) in vars {
                    let t = init.as_ref().map(|e| self.expr(e)).unwrap_or(Ty::Dyn);
                    let t = match declared {
                        Some("String") => Ty::Str,
                        Some(m) if m.starts_with('I') && MODEL_TYPES.contains(&m) => Ty::Dyn,
                        Some(_) => Ty::Dyn,
                        None => t,
                    };
                    self.declare(name, t);
                }
            }
            StmtKind::Expr(e) => {
                self.expr(e);
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.expr(cond);
                self.scoped(then);
                if let Some(o) = otherwise {
                    self.scoped(o);
                }
            }
            StmtKind::Foreach {
                ty,
                name,
                iter,
                body,
            } => {
                if let Some(t) = ty {
                    self.type_ref(t);
                }
                self.expr(iter);
                self.push();
                self.declare(name, Ty::Dyn);
                self.stmt(body);
                self.pop();
            }
            StmtKind::For {
                init,
                cond,
                step,
                body,
            } => {
                self.push();
                for s in init {
                    self.stmt(s);
                }
                if let Some(c) = cond {
                    self.expr(c);
                }
                for e in step {
                    self.expr(e);
                }
                self.scoped(body);
                self.pop();
            }
            StmtKind::While { cond, body } => {
                self.expr(cond);
                self.scoped(body);
            }
            StmtKind::Return(e) | StmtKind::Throw(e) => {
                if let Some(e) = e {
                    self.expr(e);
                }
            }
            StmtKind::Try {
                body,
                catches,
                finally,
            } => {
                self.block(body);
                for (ty, name, stmts) in catches {
                    if let Some(t) = ty {
                        let short = t.name.rsplit('.').next().unwrap_or(&t.name);
                        if !lib::statics::EXCEPTIONS.contains(&short) {
                            self.error(
                                t.span,
                                format!("'{}' is not an exception type policies can catch", t.name),
                            );
                        }
                    }
                    self.push();
                    if let Some(n) = name {
                        self.declare(n, Ty::Dyn);
                    }
                    self.block(stmts);
                    self.pop();
                }
                if let Some(f) = finally {
                    self.block(f);
                }
            }
            StmtKind::Using { resource, body } => {
                self.push();
                self.stmt(resource);
                self.stmt(body);
                self.pop();
            }
            StmtKind::LocalFunction {
                ret, params, body, ..
            } => {
                if let Some(r) = ret {
                    self.type_ref(r);
                }
                self.push();
                for (t, n) in params {
                    self.type_ref(t);
                    self.declare(n, Ty::Dyn);
                }
                self.block(body);
                self.pop();
            }
            StmtKind::Break | StmtKind::Continue | StmtKind::Empty => {}
        }
    }

    fn args(&mut self, args: &[Arg]) {
        for a in args {
            match &a.decl {
                Some(_) => {}
                None => {
                    self.expr(&a.expr);
                }
            }
        }
    }

    /// Declares the `out var x` of a call (visible after it).
    fn out_decls(&mut self, args: &[Arg]) {
        for a in args {
            if let Some((ty, name)) = &a.decl {
                if let Some(t) = ty {
                    self.type_ref(t);
                }
                self.declare(name, Ty::Dyn);
            }
        }
    }

    /// Checks `target.name` given the target's type; returns the member's type.
    fn member(&mut self, target: Ty, name: &str, span: Span, is_call: bool) -> Ty {
        match target {
            Ty::Type(t) => {
                let members = lib::static_members(t).unwrap_or_default();
                if members.contains(&name) {
                    if t == "String" && name == "Empty" {
                        Ty::Str
                    } else {
                        Ty::Dyn
                    }
                } else {
                    self.error(
                        span,
                        format!(
                            "'{t}' does not contain a static member '{name}'{}",
                            hint(name, members.iter().copied())
                        ),
                    );
                    Ty::Dyn
                }
            }
            Ty::Model(m) => {
                let Some((_, members)) = lib::host::MODEL.iter().find(|(n, _)| *n == m) else {
                    return Ty::Dyn;
                };
                if let Some((_, ty)) = members.iter().find(|(n, _)| *n == name) {
                    let is_method = lib::host::METHODS.contains(&name);
                    if is_call != is_method {
                        let msg = if is_call {
                            format!("'{m}.{name}' is a property, not a method: it cannot be called")
                        } else {
                            format!("'{m}.{name}' is a method: call it with (...)")
                        };
                        self.error(span, msg);
                        return Ty::Dyn;
                    }
                    if name == "Body" {
                        match m {
                            "IRequest" => self.facts.reads_request_body = true,
                            "IResponse" => self.facts.reads_response_body = true,
                            _ => {}
                        }
                    }
                    return match *ty {
                        "String" => Ty::Str,
                        "?" | "Int32" | "Boolean" | "Guid" | "DateTime" | "TimeSpan" => Ty::Dyn,
                        other => Ty::Model(
                            lib::host::MODEL
                                .iter()
                                .find(|(n, _)| *n == other)
                                .map(|(n, _)| *n)
                                .unwrap_or("?"),
                        ),
                    };
                }
                let linq_ok = lib::host::enumerable(m) && lib::linq::INSTANCE.contains(&name);
                if linq_ok || lib::COMMON.contains(&name) {
                    return Ty::Dyn;
                }
                self.error(
                    span,
                    format!(
                        "'{m}' does not contain a definition for '{name}'{}",
                        hint(name, members.iter().map(|(n, _)| *n))
                    ),
                );
                Ty::Dyn
            }
            Ty::Str => {
                if lib::strings::INSTANCE.contains(&name)
                    || lib::linq::INSTANCE.contains(&name)
                    || lib::COMMON.contains(&name)
                {
                    match name {
                        "Substring" | "Replace" | "Trim" | "TrimStart" | "TrimEnd" | "ToLower"
                        | "ToUpper" | "ToLowerInvariant" | "ToUpperInvariant" | "PadLeft"
                        | "PadRight" | "Insert" | "Remove" | "ToString" => Ty::Str,
                        _ => Ty::Dyn,
                    }
                } else {
                    self.error(
                        span,
                        format!(
                            "'string' does not contain a definition for '{name}'{}",
                            hint(name, lib::strings::INSTANCE.iter().copied())
                        ),
                    );
                    Ty::Dyn
                }
            }
            Ty::Dyn => {
                if !union().contains(name) {
                    let what = if is_call { "method" } else { "member" };
                    self.error(
                        span,
                        format!(
                            "no allowed type has a {what} named '{name}'{}",
                            hint(name, union().iter().copied())
                        ),
                    );
                }
                Ty::Dyn
            }
        }
    }

    /// A dotted path that names a type, unless a local shadows its head.
    fn type_path(&self, e: &Expr) -> Option<&'static str> {
        let path = dotted(e)?;
        let head = path.split('.').next().unwrap_or_default();
        if self.local(head).is_some() || head == "context" {
            return None;
        }
        lib::resolve_type(&path)
    }

    fn expr(&mut self, e: &Expr) -> Ty {
        match &e.kind {
            ExprKind::Lit(Literal::Str(_)) => Ty::Str,
            ExprKind::Lit(_) => Ty::Dyn,
            ExprKind::Interp(parts) => {
                for p in parts {
                    if let InterpPart::Hole { expr, .. } = p {
                        self.expr(expr);
                    }
                }
                Ty::Str
            }
            ExprKind::Name(n, targs) => {
                for t in targs {
                    self.type_ref(t);
                }
                if let Some(t) = self.local(n) {
                    return t;
                }
                if n == "context" {
                    return Ty::Model("IProxyContext");
                }
                if let Some(t) = lib::resolve_type(n) {
                    return Ty::Type(t);
                }
                if n.len() >= 4 && n.bytes().all(|b| b == b'_') {
                    // `policy check` blanks `{{named values}}` to underscores.
                    return Ty::Dyn;
                }
                let mut known = self.locals();
                known.push("context".into());
                self.error(
                    e.span,
                    format!(
                        "the name '{n}' does not exist in the current context{}",
                        hint(n, known.iter().map(String::as_str))
                    ),
                );
                Ty::Dyn
            }
            ExprKind::Member {
                target,
                name,
                type_args,
                ..
            } => {
                for t in type_args {
                    self.type_ref(t);
                }
                if let Some(t) = self.type_path(e) {
                    return Ty::Type(t);
                }
                let tt = match self.type_path(target) {
                    Some(t) => Ty::Type(t),
                    None => {
                        if let Some(path) = dotted(target) {
                            if is_namespace(&path) && self.local(&path).is_none() {
                                let full = format!("{path}.{name}");
                                self.error(
                                    e.span,
                                    format!(
                                        "the type '{full}' is not allowed in policy expressions"
                                    ),
                                );
                                return Ty::Dyn;
                            }
                        }
                        self.expr(target)
                    }
                };
                self.member(tt, name, member_span(e, name), false)
            }
            ExprKind::Call { callee, args } => {
                self.args(args);
                let t = match &callee.kind {
                    ExprKind::Member {
                        target,
                        name,
                        type_args,
                        ..
                    } => {
                        for t in type_args {
                            self.type_ref(t);
                        }
                        let tt = match self.type_path(target) {
                            Some(t) => Ty::Type(t),
                            None => {
                                if let Some(path) = dotted(target) {
                                    if is_namespace(&path) && self.local(&path).is_none() {
                                        self.error(
                                            callee.span,
                                            format!(
                                                "the type '{path}.{name}' is not allowed in policy expressions"
                                            ),
                                        );
                                        self.out_decls(args);
                                        return Ty::Dyn;
                                    }
                                }
                                self.expr(target)
                            }
                        };
                        self.member(tt, name, member_span(callee, name), true)
                    }
                    ExprKind::Name(n, _) => {
                        if self.local(n).is_none() {
                            self.error(
                                callee.span,
                                format!("the name '{n}' does not exist in the current context"),
                            );
                        }
                        Ty::Dyn
                    }
                    _ => {
                        self.expr(callee);
                        Ty::Dyn
                    }
                };
                self.out_decls(args);
                t
            }
            ExprKind::Index { target, args, .. } => {
                self.expr(target);
                for a in args {
                    self.expr(a);
                }
                Ty::Dyn
            }
            ExprKind::Unary { expr, .. } | ExprKind::Postfix { expr, .. } => {
                self.expr(expr);
                Ty::Dyn
            }
            ExprKind::Binary { op, left, right } => {
                let l = self.expr(left);
                let r = self.expr(right);
                if (*op == "+" && (l == Ty::Str || r == Ty::Str))
                    || (*op == "??" && l == Ty::Str && r == Ty::Str)
                {
                    Ty::Str
                } else {
                    Ty::Dyn
                }
            }
            ExprKind::Assign { target, value, .. } => {
                self.expr(target);
                self.expr(value)
            }
            ExprKind::Conditional {
                cond,
                then,
                otherwise,
            } => {
                self.expr(cond);
                let a = self.expr(then);
                let b = self.expr(otherwise);
                if a == b {
                    a
                } else {
                    Ty::Dyn
                }
            }
            ExprKind::Cast { ty, expr } => {
                let t = self.type_ref(ty);
                self.expr(expr);
                match t {
                    Some("String") => Ty::Str,
                    _ => Ty::Dyn,
                }
            }
            ExprKind::Is {
                expr, ty, binding, ..
            } => {
                self.expr(expr);
                if let Some(t) = ty {
                    self.type_ref(t);
                }
                if let Some(b) = binding {
                    self.declare(b, Ty::Dyn);
                }
                Ty::Dyn
            }
            ExprKind::As { expr, ty } => {
                self.expr(expr);
                match self.type_ref(ty) {
                    Some("String") => Ty::Str,
                    _ => Ty::Dyn,
                }
            }
            ExprKind::Lambda { params, body } => {
                self.push();
                for (t, n) in params {
                    if let Some(t) = t {
                        self.type_ref(t);
                    }
                    self.declare(n, Ty::Dyn);
                }
                match body {
                    LambdaBody::Expr(e) => {
                        self.expr(e);
                    }
                    LambdaBody::Block(b) => self.block(b),
                }
                self.pop();
                Ty::Dyn
            }
            ExprKind::New { ty, args, init } => {
                if let Some(t) = self.type_ref(ty) {
                    if !lib::statics::CONSTRUCTIBLE.contains(&t) {
                        self.error(
                            ty.span,
                            format!("policy expressions cannot create a '{}' with new", ty.name),
                        );
                    }
                }
                self.args(args);
                match init {
                    Some(Initializer::Collection(items)) => {
                        for i in items {
                            self.expr(i);
                        }
                    }
                    Some(Initializer::Object(entries)) => {
                        for (t, v) in entries {
                            if let MemberTarget::Index(idx) = t {
                                for i in idx {
                                    self.expr(i);
                                }
                            }
                            self.expr(v);
                        }
                    }
                    None => {}
                }
                if lib::resolve_type(&ty.name) == Some("String") {
                    Ty::Str
                } else {
                    Ty::Dyn
                }
            }
            ExprKind::NewArray { ty, size, items } => {
                if let Some(t) = ty {
                    self.type_ref(t);
                }
                if let Some(s) = size {
                    self.expr(s);
                }
                for i in items.iter().flatten() {
                    self.expr(i);
                }
                Ty::Dyn
            }
            ExprKind::Anonymous(fields) => {
                for (_, v) in fields {
                    self.expr(v);
                }
                Ty::Dyn
            }
            ExprKind::Typeof(t) => {
                self.type_ref(t);
                Ty::Dyn
            }
            ExprKind::Default(t) => {
                if let Some(t) = t {
                    self.type_ref(t);
                }
                Ty::Dyn
            }
        }
    }
}

/// Whether a dotted path is in a .NET namespace and no prefix of it names
/// an allowed type (`System.IO.File`, not `System.Text.Encoding.UTF8`).
fn is_namespace(path: &str) -> bool {
    let mut prefix = String::new();
    for seg in path.split('.') {
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(seg);
        if lib::resolve_type(&prefix).is_some() {
            return false;
        }
    }
    let with_dot = format!("{path}.");
    ["System.", "Newtonsoft."]
        .iter()
        .any(|ns| with_dot.starts_with(ns))
}

/// The span of the member name at the end of `target.name`.
fn member_span(e: &Expr, name: &str) -> Span {
    let end = e.span.end;
    Span::new(end.saturating_sub(name.len()).max(e.span.start), end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::parser::parse_code;

    fn errors(src: &str) -> Vec<String> {
        let code = parse_code(src, 0).unwrap();
        match bind(&code) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.message).collect(),
        }
    }

    #[test]
    fn the_allowed_surface_binds() {
        for ok in [
            r#"@(context.Request.Headers.GetValueOrDefault("x", ""))"#,
            r#"@(context.Variables.GetValueOrDefault<string>("v"))"#,
            r#"@(context.Request.Body.As<JObject>(preserveContent: true)["a"].ToString())"#,
            r#"@(DateTime.UtcNow.AddSeconds(5).ToString("o"))"#,
            r#"@(System.Text.Encoding.UTF8.GetBytes("x"))"#,
            r#"@{ var s = "a,b"; return s.Split(',').Select(x => x.ToUpper()).ToArray(); }"#,
            r#"@{ string t; if (context.Request.Headers.GetValueOrDefault("Authorization","").TryParseJwt(out var jwt)) { t = jwt.Subject; } else { t = ""; } return t; }"#,
            r#"@(new JObject(new JProperty("a", 1)).ToString())"#,
            r#"@((string)context.Variables["x"] ?? "none")"#,
            r#"@(context.Request.Headers.Select(h => h.Key).Count())"#,
            r#"@(Regex.IsMatch("abc", "^a", RegexOptions.IgnoreCase))"#,
        ] {
            assert_eq!(errors(ok), Vec::<String>::new(), "{ok}");
        }
    }

    #[test]
    fn unknown_names_and_members_are_refused_with_hints() {
        let e = errors("@(context.Request.Heders)");
        assert_eq!(
            e,
            vec!["'IRequest' does not contain a definition for 'Heders' (did you mean 'Headers'?)"]
        );
        let e = errors("@(context.Request.MatchedParameters(\"id\"))");
        assert_eq!(
            e,
            vec!["'IRequest.MatchedParameters' is a property, not a method: it cannot be called"]
        );
        let e = errors("@(contxt.Request)");
        assert_eq!(
            e,
            vec![
                "the name 'contxt' does not exist in the current context (did you mean 'context'?)"
            ]
        );
        let e = errors("@(DateTime.UtcNoww)");
        assert_eq!(
            e,
            vec!["'DateTime' does not contain a static member 'UtcNoww' (did you mean 'UtcNow'?)"]
        );
        let e = errors(r#"@("x".Frobnicate())"#);
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("'string' does not contain a definition for 'Frobnicate'"));
        let e = errors("@(new System.IO.FileInfo(\"x\"))");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("not allowed"), "{e:?}");
        let e = errors("@(System.IO.File.ReadAllText(\"/etc/passwd\"))");
        assert!(
            e[0].contains("'System.IO.File.ReadAllText' is not allowed"),
            "{e:?}"
        );
        let e = errors(r#"@{ var x = 1; return y + x.Foo; }"#);
        assert_eq!(e.len(), 2, "{e:?}");
    }

    #[test]
    fn body_reads_are_recorded() {
        let f = bind(&parse_code("@(context.Request.Body.As<string>(true))", 0).unwrap()).unwrap();
        assert!(f.reads_request_body && !f.reads_response_body);
        let f = bind(
            &parse_code(
                "@{ var r = context.Response; return r.Body.As<JObject>(); }",
                0,
            )
            .unwrap(),
        )
        .unwrap();
        assert!(f.reads_response_body);
        let f = bind(&parse_code("@(context.Request.Headers.Count)", 0).unwrap()).unwrap();
        assert_eq!(f, Facts::default());
    }
}
