//! The syntax tree of policy expressions, and its S-expression rendering
//! (used by the parser tests: they compare shapes, not Rust structs).

use super::lexer::NumKind;
use super::Span;

/// A type as written: `string`, `JObject`, `Dictionary<string, int>`,
/// `int[]`, `int?`.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeRef {
    /// Dotted name as written (`System.String`, `JObject`).
    pub name: String,
    pub args: Vec<TypeRef>,
    /// Number of `[]` suffixes.
    pub array_rank: u8,
    pub nullable: bool,
    pub span: Span,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(u64, NumKind),
    Real(f64, NumKind),
    Str(String),
    Char(char),
}

/// How an argument is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgMode {
    Value,
    Out,
    Ref,
}

/// A call argument; `out var x` / `out T x` declares `decl`.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    /// `name: value` (C# named argument).
    pub name: Option<String>,
    pub mode: ArgMode,
    pub expr: Expr,
    /// `Some((type or None for var, name))` for `out var name` / `out T name`.
    pub decl: Option<(Option<TypeRef>, String)>,
}

/// A piece of an interpolated string.
#[derive(Debug, Clone, PartialEq)]
pub enum InterpPart {
    Text(String),
    Hole {
        expr: Expr,
        align: Option<String>,
        format: Option<String>,
    },
}

/// A lambda's body.
#[derive(Debug, Clone, PartialEq)]
pub enum LambdaBody {
    Expr(Box<Expr>),
    Block(Vec<Stmt>),
}

/// `new T(...) { ... }` initializers.
#[derive(Debug, Clone, PartialEq)]
pub enum Initializer {
    /// `{ a, b }` (collections) or `{ {k, v}, ... }` (dictionaries).
    Collection(Vec<Expr>),
    /// `{ Name = value, ["key"] = value }`.
    Object(Vec<(MemberTarget, Expr)>),
}

/// The left side of an object-initializer entry.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberTarget {
    Name(String),
    Index(Vec<Expr>),
}

/// An expression and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// The expression forms.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Lit(Literal),
    Interp(Vec<InterpPart>),
    /// A simple name, possibly generic (`Foo<int>`, rare outside calls).
    Name(String, Vec<TypeRef>),
    /// `target.name<args>` or `target?.name`.
    Member {
        target: Box<Expr>,
        name: String,
        type_args: Vec<TypeRef>,
        null_conditional: bool,
    },
    Call {
        callee: Box<Expr>,
        args: Vec<Arg>,
    },
    /// `target[args]` or `target?[args]`.
    Index {
        target: Box<Expr>,
        args: Vec<Expr>,
        null_conditional: bool,
    },
    /// `op` is one of `- + ! ~ ++ --` (prefix).
    Unary {
        op: &'static str,
        expr: Box<Expr>,
    },
    /// `x++` / `x--`.
    Postfix {
        op: &'static str,
        expr: Box<Expr>,
    },
    Binary {
        op: &'static str,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `=`, `+=`, `??=`, ...
    Assign {
        op: &'static str,
        target: Box<Expr>,
        value: Box<Expr>,
    },
    Conditional {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    Cast {
        ty: TypeRef,
        expr: Box<Expr>,
    },
    /// `x is T` / `x is T name` / `x is null`.
    Is {
        expr: Box<Expr>,
        ty: Option<TypeRef>,
        binding: Option<String>,
        not: bool,
    },
    As {
        expr: Box<Expr>,
        ty: TypeRef,
    },
    Lambda {
        params: Vec<(Option<TypeRef>, String)>,
        body: LambdaBody,
    },
    /// `new T(args) { init }`.
    New {
        ty: TypeRef,
        args: Vec<Arg>,
        init: Option<Initializer>,
    },
    /// `new T[n]`, `new T[] { ... }`, `new[] { ... }`.
    NewArray {
        ty: Option<TypeRef>,
        size: Option<Box<Expr>>,
        items: Option<Vec<Expr>>,
    },
    /// `new { A = 1, B }`.
    Anonymous(Vec<(String, Expr)>),
    Typeof(TypeRef),
    Default(Option<TypeRef>),
}

/// A statement of a `@{ ... }` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

/// The statement forms.
#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    Block(Vec<Stmt>),
    /// `var x = e;`, `T x = e, y;` (type `None` means `var`).
    Local {
        ty: Option<TypeRef>,
        vars: Vec<(String, Option<Expr>)>,
    },
    Expr(Expr),
    If {
        cond: Expr,
        then: Box<Stmt>,
        otherwise: Option<Box<Stmt>>,
    },
    Foreach {
        ty: Option<TypeRef>,
        name: String,
        iter: Expr,
        body: Box<Stmt>,
    },
    For {
        init: Vec<Stmt>,
        cond: Option<Expr>,
        step: Vec<Expr>,
        body: Box<Stmt>,
    },
    While {
        cond: Expr,
        body: Box<Stmt>,
    },
    Return(Option<Expr>),
    Break,
    Continue,
    Throw(Option<Expr>),
    Try {
        body: Vec<Stmt>,
        catches: Vec<(Option<TypeRef>, Option<String>, Vec<Stmt>)>,
        finally: Option<Vec<Stmt>>,
    },
    /// `using (resource) body` (the resource is a declaration or an expression).
    Using {
        resource: Box<Stmt>,
        body: Box<Stmt>,
    },
    /// A local function: `T Name(T a, ...) { ... }` or `=> expr;`
    /// (`ret` is `None` for `void`).
    LocalFunction {
        ret: Option<TypeRef>,
        name: String,
        params: Vec<(TypeRef, String)>,
        body: Vec<Stmt>,
    },
    Empty,
}

// === S-expressions ===

impl TypeRef {
    pub fn sexpr(&self) -> String {
        let mut s = self.name.clone();
        if !self.args.is_empty() {
            let args: Vec<String> = self.args.iter().map(TypeRef::sexpr).collect();
            s = format!("{s}<{}>", args.join(","));
        }
        for _ in 0..self.array_rank {
            s.push_str("[]");
        }
        if self.nullable {
            s.push('?');
        }
        s
    }
}

fn list(head: &str, items: impl IntoIterator<Item = String>) -> String {
    let mut s = format!("({head}");
    for i in items {
        s.push(' ');
        s.push_str(&i);
    }
    s.push(')');
    s
}

fn type_args(t: &[TypeRef]) -> String {
    if t.is_empty() {
        String::new()
    } else {
        format!(
            "<{}>",
            t.iter().map(TypeRef::sexpr).collect::<Vec<_>>().join(",")
        )
    }
}

impl Arg {
    fn sexpr(&self) -> String {
        let value = self.value_sexpr();
        match &self.name {
            Some(n) => format!("({n}: {value})"),
            None => value,
        }
    }

    fn value_sexpr(&self) -> String {
        match (&self.mode, &self.decl) {
            (ArgMode::Value, _) => self.expr.sexpr(),
            (ArgMode::Out, Some((ty, name))) => {
                format!(
                    "(out {} {name})",
                    ty.as_ref().map_or("var".into(), TypeRef::sexpr)
                )
            }
            (ArgMode::Out, None) => format!("(out {})", self.expr.sexpr()),
            (ArgMode::Ref, _) => format!("(ref {})", self.expr.sexpr()),
        }
    }
}

impl Expr {
    /// The expression as an S-expression: `(+ 1 (* 2 3))`.
    pub fn sexpr(&self) -> String {
        match &self.kind {
            ExprKind::Lit(l) => match l {
                Literal::Null => "null".into(),
                Literal::Bool(b) => b.to_string(),
                Literal::Int(v, _) => v.to_string(),
                Literal::Real(v, _) => format!("{v:?}"),
                Literal::Str(s) => format!("{s:?}"),
                Literal::Char(c) => format!("{c:?}"),
            },
            ExprKind::Interp(parts) => list(
                "$",
                parts.iter().map(|p| match p {
                    InterpPart::Text(t) => format!("{t:?}"),
                    InterpPart::Hole { expr, format, .. } => match format {
                        Some(f) => format!("{{{}:{f}}}", expr.sexpr()),
                        None => format!("{{{}}}", expr.sexpr()),
                    },
                }),
            ),
            ExprKind::Name(n, t) => format!("{n}{}", type_args(t)),
            ExprKind::Member {
                target,
                name,
                type_args: t,
                null_conditional,
            } => list(
                if *null_conditional { "?." } else { "." },
                [target.sexpr(), format!("{name}{}", type_args(t))],
            ),
            ExprKind::Call { callee, args } => list(
                "call",
                std::iter::once(callee.sexpr()).chain(args.iter().map(Arg::sexpr)),
            ),
            ExprKind::Index {
                target,
                args,
                null_conditional,
            } => list(
                if *null_conditional { "?[]" } else { "[]" },
                std::iter::once(target.sexpr()).chain(args.iter().map(Expr::sexpr)),
            ),
            ExprKind::Unary { op, expr } => list(op, [expr.sexpr()]),
            ExprKind::Postfix { op, expr } => list(&format!("post{op}"), [expr.sexpr()]),
            ExprKind::Binary { op, left, right } => list(op, [left.sexpr(), right.sexpr()]),
            ExprKind::Assign { op, target, value } => list(op, [target.sexpr(), value.sexpr()]),
            ExprKind::Conditional {
                cond,
                then,
                otherwise,
            } => list("?:", [cond.sexpr(), then.sexpr(), otherwise.sexpr()]),
            ExprKind::Cast { ty, expr } => list("cast", [ty.sexpr(), expr.sexpr()]),
            ExprKind::Is {
                expr,
                ty,
                binding,
                not,
            } => {
                let mut items = vec![
                    expr.sexpr(),
                    ty.as_ref().map_or("null".into(), TypeRef::sexpr),
                ];
                items.extend(binding.clone());
                list(if *not { "is-not" } else { "is" }, items)
            }
            ExprKind::As { expr, ty } => list("as", [expr.sexpr(), ty.sexpr()]),
            ExprKind::Lambda { params, body } => {
                let ps: Vec<String> = params
                    .iter()
                    .map(|(t, n)| match t {
                        Some(t) => format!("{} {n}", t.sexpr()),
                        None => n.clone(),
                    })
                    .collect();
                let body = match body {
                    LambdaBody::Expr(e) => e.sexpr(),
                    LambdaBody::Block(b) => list("block", b.iter().map(Stmt::sexpr)),
                };
                list("=>", [format!("({})", ps.join(" ")), body])
            }
            ExprKind::New { ty, args, init } => {
                let mut items = vec![ty.sexpr()];
                items.extend(args.iter().map(Arg::sexpr));
                if let Some(init) = init {
                    items.push(init_sexpr(init));
                }
                list("new", items)
            }
            ExprKind::NewArray { ty, size, items } => {
                let mut out = vec![ty.as_ref().map_or("?".into(), TypeRef::sexpr)];
                if let Some(s) = size {
                    out.push(s.sexpr());
                }
                if let Some(items) = items {
                    out.push(list("items", items.iter().map(Expr::sexpr)));
                }
                list("new[]", out)
            }
            ExprKind::Anonymous(members) => list(
                "new-anon",
                members.iter().map(|(n, e)| format!("({n} {})", e.sexpr())),
            ),
            ExprKind::Typeof(t) => list("typeof", [t.sexpr()]),
            ExprKind::Default(t) => list("default", t.iter().map(TypeRef::sexpr)),
        }
    }
}

fn init_sexpr(init: &Initializer) -> String {
    match init {
        Initializer::Collection(items) => list("init", items.iter().map(Expr::sexpr)),
        Initializer::Object(items) => list(
            "init",
            items.iter().map(|(t, e)| match t {
                MemberTarget::Name(n) => format!("(= {n} {})", e.sexpr()),
                MemberTarget::Index(i) => {
                    format!(
                        "(= [{}] {})",
                        i.iter().map(Expr::sexpr).collect::<Vec<_>>().join(" "),
                        e.sexpr()
                    )
                }
            }),
        ),
    }
}

impl Stmt {
    pub fn sexpr(&self) -> String {
        let block = |b: &[Stmt]| list("block", b.iter().map(Stmt::sexpr));
        match &self.kind {
            StmtKind::Block(b) => block(b),
            StmtKind::Local { ty, vars } => list(
                "local",
                std::iter::once(ty.as_ref().map_or("var".into(), TypeRef::sexpr)).chain(
                    vars.iter().map(|(n, e)| match e {
                        Some(e) => format!("({n} {})", e.sexpr()),
                        None => n.clone(),
                    }),
                ),
            ),
            StmtKind::Expr(e) => e.sexpr(),
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                let mut items = vec![cond.sexpr(), then.sexpr()];
                items.extend(otherwise.iter().map(|s| s.sexpr()));
                list("if", items)
            }
            StmtKind::Foreach {
                ty,
                name,
                iter,
                body,
            } => list(
                "foreach",
                [
                    format!(
                        "{} {name}",
                        ty.as_ref().map_or("var".into(), TypeRef::sexpr)
                    ),
                    iter.sexpr(),
                    body.sexpr(),
                ],
            ),
            StmtKind::For {
                init,
                cond,
                step,
                body,
            } => list(
                "for",
                [
                    block(init),
                    cond.as_ref().map_or("_".into(), Expr::sexpr),
                    list("step", step.iter().map(Expr::sexpr)),
                    body.sexpr(),
                ],
            ),
            StmtKind::While { cond, body } => list("while", [cond.sexpr(), body.sexpr()]),
            StmtKind::Return(e) => list("return", e.iter().map(Expr::sexpr)),
            StmtKind::Break => "(break)".into(),
            StmtKind::Continue => "(continue)".into(),
            StmtKind::Throw(e) => list("throw", e.iter().map(Expr::sexpr)),
            StmtKind::Try {
                body,
                catches,
                finally,
            } => {
                let mut items = vec![block(body)];
                for (t, n, b) in catches {
                    items.push(list(
                        "catch",
                        [
                            t.as_ref().map_or("_".into(), TypeRef::sexpr),
                            n.clone().unwrap_or_else(|| "_".into()),
                            block(b),
                        ],
                    ));
                }
                if let Some(f) = finally {
                    items.push(list("finally", [block(f)]));
                }
                list("try", items)
            }
            StmtKind::Using { resource, body } => list("using", [resource.sexpr(), body.sexpr()]),
            StmtKind::LocalFunction {
                ret,
                name,
                params,
                body,
            } => list(
                "fn",
                [
                    ret.as_ref().map_or("void".into(), TypeRef::sexpr),
                    name.clone(),
                    format!(
                        "({})",
                        params
                            .iter()
                            .map(|(t, n)| format!("{} {n}", t.sexpr()))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    block(body),
                ],
            ),
            StmtKind::Empty => "(empty)".into(),
        }
    }
}
