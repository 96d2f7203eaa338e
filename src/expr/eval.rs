//! The evaluator: runs bound expression trees against a [`Ctx`] with hard
//! limits (steps, call depth, bytes allocated, string size), so a policy
//! expression cannot hang or exhaust the gateway.
//!
//! Exceptions are [`EvalError`]s carrying the .NET exception type; `try`/
//! `catch` sees them, except [`LIMIT`] errors, which nothing can catch.

use super::ast::*;
use super::context::{Ctx, Host};
use super::lexer::NumKind;
use super::lib;
use super::time::TimeSpan;
use super::value::{JNode, ListKind, Shared, Value};
use super::Span;
use std::sync::Arc;

/// The exception kind of an exhausted limit (uncatchable).
pub const LIMIT: &str = "LimitExceeded";

/// Bounds on one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Expression nodes and statements evaluated.
    pub max_steps: u64,
    /// Nested lambda / local-function calls.
    pub max_calls: u32,
    /// Longest string or byte array produced.
    pub max_string: usize,
    /// Bytes of strings and arrays produced in total.
    pub max_alloc: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: 1_000_000,
            max_calls: 32,
            max_string: 16 << 20,
            max_alloc: 64 << 20,
        }
    }
}

/// A runtime failure: a .NET exception (type and message) and where.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalError {
    pub kind: &'static str,
    pub message: String,
    pub span: Span,
}

impl EvalError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> EvalError {
        EvalError {
            kind,
            message: message.into(),
            span: Span::default(),
        }
    }

    pub fn null_ref() -> EvalError {
        EvalError::new(
            "NullReferenceException",
            "Object reference not set to an instance of an object.",
        )
    }

    pub fn invalid_cast(from: &str, to: &str) -> EvalError {
        EvalError::new(
            "InvalidCastException",
            format!("Unable to cast object of type '{from}' to type '{to}'."),
        )
    }

    pub fn format(message: impl Into<String>) -> EvalError {
        EvalError::new("FormatException", message)
    }

    pub fn argument(message: impl Into<String>) -> EvalError {
        EvalError::new("ArgumentException", message)
    }

    pub fn key_not_found(key: &str) -> EvalError {
        EvalError::new(
            "KeyNotFoundException",
            format!("The given key '{key}' was not present in the dictionary."),
        )
    }

    pub fn out_of_range(message: impl Into<String>) -> EvalError {
        EvalError::new("ArgumentOutOfRangeException", message)
    }

    pub fn index_out_of_range() -> EvalError {
        EvalError::new(
            "IndexOutOfRangeException",
            "Index was outside the bounds of the array.",
        )
    }

    pub fn invalid_op(message: impl Into<String>) -> EvalError {
        EvalError::new("InvalidOperationException", message)
    }

    fn at(mut self, span: Span) -> EvalError {
        if self.span == Span::default() {
            self.span = span;
        }
        self
    }
}

pub type EResult<T> = Result<T, EvalError>;

/// A lambda or local function and the variables it closed over.
#[derive(Debug)]
pub struct Closure {
    pub params: Vec<String>,
    pub body: ClosureBody,
    pub env: Vec<(String, Value)>,
}

/// A closure's code.
#[derive(Debug)]
pub enum ClosureBody {
    Expr(Expr),
    Block(Vec<Stmt>),
}

enum Flow {
    Normal,
    Return(Value),
    Break,
    Continue,
}

/// One evaluation in progress.
pub struct Interp<'c> {
    pub ctx: &'c Ctx,
    limits: Limits,
    steps: u64,
    calls: u32,
    allocated: usize,
    /// Local variables, innermost last; scopes are marks into this stack.
    locals: Vec<(String, Value)>,
}

/// Evaluates `@(expr)` / `@{ block }` code.
pub fn run(code: &super::parser::Code, ctx: &Ctx, limits: Limits) -> EResult<Value> {
    let mut it = Interp::new(ctx, limits);
    match code {
        super::parser::Code::Expr(e) => it.eval(e),
        super::parser::Code::Block(stmts) => match it.block(stmts)? {
            Flow::Return(v) => Ok(v),
            _ => Ok(Value::Null),
        },
    }
}

impl<'c> Interp<'c> {
    pub fn new(ctx: &'c Ctx, limits: Limits) -> Interp<'c> {
        Interp {
            ctx,
            limits,
            steps: 0,
            calls: 0,
            allocated: 0,
            locals: Vec::new(),
        }
    }

    fn step(&mut self) -> EResult<()> {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return Err(EvalError::new(
                LIMIT,
                format!(
                    "the expression ran more than {} steps and was stopped",
                    self.limits.max_steps
                ),
            ));
        }
        Ok(())
    }

    /// Charges `len` bytes of a produced string or array against the limits.
    pub fn charge(&mut self, len: usize) -> EResult<()> {
        if len > self.limits.max_string {
            return Err(EvalError::new(
                LIMIT,
                format!(
                    "a string or array of {len} bytes exceeds the limit of {} bytes",
                    self.limits.max_string
                ),
            ));
        }
        self.allocated += len;
        if self.allocated > self.limits.max_alloc {
            return Err(EvalError::new(
                LIMIT,
                format!(
                    "the expression allocated more than {} bytes and was stopped",
                    self.limits.max_alloc
                ),
            ));
        }
        Ok(())
    }

    /// The longest string or array allowed ([`Limits::max_string`]).
    pub fn max_string(&self) -> usize {
        self.limits.max_string
    }

    /// Makes a string value, charging its size.
    pub fn string(&mut self, s: String) -> EResult<Value> {
        self.charge(s.len())?;
        Ok(Value::Str(s.into()))
    }

    fn lookup(&self, name: &str) -> Option<&Value> {
        self.locals
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    fn assign_local(&mut self, name: &str, v: Value) -> EResult<()> {
        match self.locals.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = v;
                Ok(())
            }
            None => Err(EvalError::new(
                "InvalidOperationException",
                format!("the name '{name}' does not exist in the current context"),
            )),
        }
    }

    fn declare(&mut self, name: &str, v: Value) {
        self.locals.push((name.to_string(), v));
    }

    // === statements ===

    fn block(&mut self, stmts: &[Stmt]) -> EResult<Flow> {
        let mark = self.locals.len();
        let r = self.stmts(stmts);
        self.locals.truncate(mark);
        r
    }

    fn stmts(&mut self, stmts: &[Stmt]) -> EResult<Flow> {
        // Local functions are visible throughout their block.
        for s in stmts {
            if let StmtKind::LocalFunction {
                name, params, body, ..
            } = &s.kind
            {
                let closure = Closure {
                    params: params.iter().map(|(_, n)| n.clone()).collect(),
                    body: ClosureBody::Block(body.clone()),
                    env: Vec::new(),
                };
                self.declare(name, Value::Lambda(Arc::new(closure)));
            }
        }
        for s in stmts {
            match self.stmt(s)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn stmt(&mut self, s: &Stmt) -> EResult<Flow> {
        self.step()?;
        match &s.kind {
            StmtKind::Block(b) => self.block(b),
            StmtKind::Local { ty, vars } => {
                for (name, init) in vars {
                    let v = match init {
                        Some(e) => {
                            let v = self.eval(e)?;
                            match ty {
                                Some(t) => lib::implicit_convert(v, t).map_err(|e| e.at(s.span))?,
                                None => v,
                            }
                        }
                        None => ty.as_ref().map(lib::default_of).unwrap_or_default(),
                    };
                    self.declare(name, v);
                }
                Ok(Flow::Normal)
            }
            StmtKind::Expr(e) => {
                self.eval(e)?;
                Ok(Flow::Normal)
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                if self.condition(cond)? {
                    self.scoped(then)
                } else if let Some(o) = otherwise {
                    self.scoped(o)
                } else {
                    Ok(Flow::Normal)
                }
            }
            StmtKind::Foreach {
                name, iter, body, ..
            } => {
                let seq = self.eval(iter)?;
                let items = lib::iterate(self, &seq).map_err(|e| e.at(iter.span))?;
                for item in items {
                    self.step()?;
                    let mark = self.locals.len();
                    self.declare(name, item);
                    let f = self.stmt(body);
                    self.locals.truncate(mark);
                    match f? {
                        Flow::Break => break,
                        Flow::Return(v) => return Ok(Flow::Return(v)),
                        Flow::Normal | Flow::Continue => {}
                    }
                }
                Ok(Flow::Normal)
            }
            StmtKind::For {
                init,
                cond,
                step,
                body,
            } => {
                let mark = self.locals.len();
                let r = (|| {
                    for s in init {
                        self.stmt(s)?;
                    }
                    loop {
                        self.step()?;
                        if let Some(c) = cond {
                            if !self.condition(c)? {
                                break;
                            }
                        }
                        match self.scoped(body)? {
                            Flow::Break => break,
                            Flow::Return(v) => return Ok(Flow::Return(v)),
                            Flow::Normal | Flow::Continue => {}
                        }
                        for e in step {
                            self.eval(e)?;
                        }
                    }
                    Ok(Flow::Normal)
                })();
                self.locals.truncate(mark);
                r
            }
            StmtKind::While { cond, body } => {
                while self.condition(cond)? {
                    self.step()?;
                    match self.scoped(body)? {
                        Flow::Break => break,
                        Flow::Return(v) => return Ok(Flow::Return(v)),
                        Flow::Normal | Flow::Continue => {}
                    }
                }
                Ok(Flow::Normal)
            }
            StmtKind::Return(e) => Ok(Flow::Return(match e {
                Some(e) => self.eval(e)?,
                None => Value::Null,
            })),
            StmtKind::Break => Ok(Flow::Break),
            StmtKind::Continue => Ok(Flow::Continue),
            StmtKind::Throw(e) => {
                let v = match e {
                    Some(e) => self.eval(e)?,
                    None => Value::Null,
                };
                Err(lib::exception_of(&v).at(s.span))
            }
            StmtKind::Try {
                body,
                catches,
                finally,
            } => {
                let r = self.block(body);
                let r = match r {
                    Err(e) if e.kind != LIMIT => {
                        let handler = catches.iter().find(|(ty, _, _)| {
                            ty.as_ref()
                                .is_none_or(|t| lib::exception_matches(&t.name, e.kind))
                        });
                        match handler {
                            Some((_, name, stmts)) => {
                                let mark = self.locals.len();
                                if let Some(n) = name {
                                    self.declare(n, lib::exception_value(&e));
                                }
                                let r = self.stmts(stmts);
                                self.locals.truncate(mark);
                                r
                            }
                            None => Err(e),
                        }
                    }
                    other => other,
                };
                if let Some(f) = finally {
                    if let Flow::Return(v) = self.block(f)? {
                        return Ok(Flow::Return(v));
                    }
                }
                r
            }
            StmtKind::Using { resource, body } => {
                let mark = self.locals.len();
                let r = self.stmt(resource).and_then(|_| self.stmt(body));
                self.locals.truncate(mark);
                r
            }
            StmtKind::LocalFunction { .. } | StmtKind::Empty => Ok(Flow::Normal),
        }
    }

    fn scoped(&mut self, s: &Stmt) -> EResult<Flow> {
        let mark = self.locals.len();
        let r = self.stmt(s);
        self.locals.truncate(mark);
        r
    }

    fn condition(&mut self, e: &Expr) -> EResult<bool> {
        let v = self.eval(e)?;
        lib::to_bool(&v).map_err(|err| err.at(e.span))
    }

    // === expressions ===

    /// Evaluates an expression (errors carry the innermost span).
    pub fn eval(&mut self, e: &Expr) -> EResult<Value> {
        self.step()?;
        self.eval_inner(e).map_err(|err| err.at(e.span))
    }

    fn eval_inner(&mut self, e: &Expr) -> EResult<Value> {
        match &e.kind {
            ExprKind::Lit(l) => Ok(literal(l)),
            ExprKind::Interp(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        InterpPart::Text(t) => s.push_str(t),
                        InterpPart::Hole {
                            expr,
                            align,
                            format,
                        } => {
                            let v = self.eval(expr)?;
                            let text = match format {
                                Some(f) => lib::format_value(&v, f)?,
                                None => v.to_display(),
                            };
                            s.push_str(&lib::align(&text, align.as_deref()));
                        }
                    }
                    self.charge(0)?;
                }
                self.string(s)
            }
            ExprKind::Name(n, _) => match self.lookup(n) {
                Some(v) => Ok(v.clone()),
                None if n == "context" => Ok(Value::Host(Host::Context)),
                None => Err(EvalError::new(
                    "InvalidOperationException",
                    format!("the name '{n}' does not exist in the current context"),
                )),
            },
            ExprKind::Member {
                target,
                name,
                null_conditional,
                ..
            } => {
                if let Some(ty) = self.type_path(target) {
                    return lib::static_get(self, &ty, name);
                }
                let t = self.eval(target)?;
                if t.is_null() {
                    if *null_conditional {
                        return Ok(Value::Null);
                    }
                    return Err(EvalError::null_ref());
                }
                lib::get_member(self, &t, name)
            }
            ExprKind::Call { callee, args } => self.call(callee, args),
            ExprKind::Index {
                target,
                args,
                null_conditional,
            } => {
                let t = self.eval(target)?;
                if t.is_null() {
                    if *null_conditional {
                        return Ok(Value::Null);
                    }
                    return Err(EvalError::null_ref());
                }
                let idx = args
                    .iter()
                    .map(|a| self.eval(a))
                    .collect::<EResult<Vec<_>>>()?;
                lib::index_get(self, &t, &idx)
            }
            ExprKind::Unary { op, expr } => match *op {
                "++" | "--" => {
                    let v = self.eval(expr)?;
                    let n = lib::arith(if *op == "++" { "+" } else { "-" }, &v, &Value::Int(1))?;
                    self.store(expr, n.clone())?;
                    Ok(n)
                }
                _ => {
                    let v = self.eval(expr)?;
                    unary(op, v)
                }
            },
            ExprKind::Postfix { op, expr } => {
                let v = self.eval(expr)?;
                let n = lib::arith(if *op == "++" { "+" } else { "-" }, &v, &Value::Int(1))?;
                self.store(expr, n)?;
                Ok(v)
            }
            ExprKind::Binary { op, left, right } => match *op {
                "&&" => {
                    if !self.condition(left)? {
                        return Ok(Value::Bool(false));
                    }
                    Ok(Value::Bool(self.condition(right)?))
                }
                "||" => {
                    if self.condition(left)? {
                        return Ok(Value::Bool(true));
                    }
                    Ok(Value::Bool(self.condition(right)?))
                }
                "??" => {
                    let l = self.eval(left)?;
                    if l.is_null() {
                        self.eval(right)
                    } else {
                        Ok(l)
                    }
                }
                _ => {
                    let l = self.eval(left)?;
                    let r = self.eval(right)?;
                    let v = lib::binary(op, &l, &r)?;
                    if let Value::Str(s) = &v {
                        self.charge(s.len())?;
                    }
                    Ok(v)
                }
            },
            ExprKind::Assign { op, target, value } => {
                let v = match *op {
                    "=" => self.eval(value)?,
                    "??=" => {
                        let cur = self.eval(target)?;
                        if !cur.is_null() {
                            return Ok(cur);
                        }
                        self.eval(value)?
                    }
                    _ => {
                        let cur = self.eval(target)?;
                        let r = self.eval(value)?;
                        let v = lib::binary(&op[..op.len() - 1], &cur, &r)?;
                        if let Value::Str(s) = &v {
                            self.charge(s.len())?;
                        }
                        v
                    }
                };
                self.store(target, v.clone())?;
                Ok(v)
            }
            ExprKind::Conditional {
                cond,
                then,
                otherwise,
            } => {
                if self.condition(cond)? {
                    self.eval(then)
                } else {
                    self.eval(otherwise)
                }
            }
            ExprKind::Cast { ty, expr } => {
                let v = self.eval(expr)?;
                lib::cast(self, v, ty)
            }
            ExprKind::Is {
                expr,
                ty,
                binding,
                not,
            } => {
                let v = self.eval(expr)?;
                let ok = match ty {
                    None => v.is_null(),
                    Some(t) => lib::is_type(&v, t),
                };
                if ok {
                    if let Some(b) = binding {
                        self.declare(b, v);
                    }
                }
                Ok(Value::Bool(ok != *not))
            }
            ExprKind::As { expr, ty } => {
                let v = self.eval(expr)?;
                Ok(if lib::is_type(&v, ty) { v } else { Value::Null })
            }
            ExprKind::Lambda { params, body } => {
                let closure = Closure {
                    params: params.iter().map(|(_, n)| n.clone()).collect(),
                    body: match body {
                        LambdaBody::Expr(e) => ClosureBody::Expr((**e).clone()),
                        LambdaBody::Block(b) => ClosureBody::Block(b.clone()),
                    },
                    env: self.locals.clone(),
                };
                Ok(Value::Lambda(Arc::new(closure)))
            }
            ExprKind::New { ty, args, init } => {
                let vals = args
                    .iter()
                    .map(|a| self.eval(&a.expr))
                    .collect::<EResult<Vec<_>>>()?;
                let obj = lib::construct(self, ty, vals)?;
                if let Some(init) = init {
                    self.initialize(&obj, init)?;
                }
                Ok(obj)
            }
            ExprKind::NewArray { ty, size, items } => {
                let is_bytes = ty
                    .as_ref()
                    .is_some_and(|t| matches!(t.name.as_str(), "byte" | "Byte" | "System.Byte"));
                let items = match (size, items) {
                    (_, Some(items)) => items
                        .iter()
                        .map(|i| self.eval(i))
                        .collect::<EResult<Vec<_>>>()?,
                    (Some(n), None) => {
                        let n = self.eval(n)?;
                        let n = lib::to_i64(&n)?;
                        if n < 0 {
                            return Err(EvalError::new(
                                "OverflowException",
                                "Arithmetic operation resulted in an overflow.",
                            ));
                        }
                        self.charge(n as usize)?;
                        if is_bytes {
                            return Ok(Value::Bytes(Shared::new(vec![0; n as usize])));
                        }
                        let fill = ty.as_ref().map(lib::default_of).unwrap_or_default();
                        vec![fill; n as usize]
                    }
                    (None, None) => Vec::new(),
                };
                if is_bytes {
                    let bytes = items
                        .iter()
                        .map(|v| lib::to_i64(v).map(|b| b as u8))
                        .collect::<EResult<Vec<u8>>>()?;
                    return Ok(Value::Bytes(Shared::new(bytes)));
                }
                Ok(Value::new_array(items))
            }
            ExprKind::Anonymous(fields) => {
                let mut entries = Vec::new();
                for (name, e) in fields {
                    entries.push((Value::str(name.as_str()), self.eval(e)?));
                }
                Ok(Value::Dict(Shared::new(entries)))
            }
            ExprKind::Typeof(t) => Ok(Value::str(t.name.as_str())),
            ExprKind::Default(t) => Ok(t.as_ref().map(lib::default_of).unwrap_or_default()),
        }
    }

    fn initialize(&mut self, obj: &Value, init: &Initializer) -> EResult<()> {
        match init {
            Initializer::Collection(items) => {
                for item in items {
                    // `{ k, v }` entries of a dictionary initializer.
                    let args = match &item.kind {
                        ExprKind::Anonymous(_) => vec![self.eval(item)?],
                        _ => vec![self.eval(item)?],
                    };
                    let args = match (obj, args.as_slice()) {
                        (Value::Dict(_), [Value::List(pair, ListKind::Array)]) => {
                            pair.lock().clone()
                        }
                        _ => args,
                    };
                    lib::call_method(self, obj, "Add", &[], args)?;
                }
            }
            Initializer::Object(entries) => {
                for (target, e) in entries {
                    let v = self.eval(e)?;
                    match target {
                        MemberTarget::Name(n) => lib::set_member(self, obj, n, v)?,
                        MemberTarget::Index(idx) => {
                            let idx = idx
                                .iter()
                                .map(|i| self.eval(i))
                                .collect::<EResult<Vec<_>>>()?;
                            lib::index_set(self, obj, &idx, v)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes to an assignable expression.
    fn store(&mut self, target: &Expr, v: Value) -> EResult<()> {
        match &target.kind {
            ExprKind::Name(n, _) => self.assign_local(n, v),
            ExprKind::Index { target, args, .. } => {
                let t = self.eval(target)?;
                let idx = args
                    .iter()
                    .map(|a| self.eval(a))
                    .collect::<EResult<Vec<_>>>()?;
                lib::index_set(self, &t, &idx, v)
            }
            ExprKind::Member { target, name, .. } => {
                let t = self.eval(target)?;
                lib::set_member(self, &t, name, v)
            }
            _ => Err(EvalError::invalid_op(
                "the left-hand side of an assignment must be a variable, property or indexer",
            )),
        }
    }

    /// The allowed type a (dotted) name denotes, unless a local shadows it.
    pub fn type_path(&self, e: &Expr) -> Option<String> {
        // Cheap test first (no allocation): values, not types, start with
        // `context` or a local.
        let head = head_name(e)?;
        if head == "context" || self.lookup(head).is_some() {
            return None;
        }
        let path = dotted(e)?;
        lib::resolve_type(&path).map(str::to_string)
    }

    fn call(&mut self, callee: &Expr, args: &[Arg]) -> EResult<Value> {
        let mut vals = Vec::with_capacity(args.len());
        for a in args {
            if a.mode == ArgMode::Out && a.decl.is_some() {
                vals.push(Value::Null);
            } else {
                vals.push(self.eval(&a.expr)?);
            }
        }
        let outs: Vec<usize> = args
            .iter()
            .enumerate()
            .filter(|(_, a)| a.mode != ArgMode::Value)
            .map(|(i, _)| i)
            .collect();
        let (result, vals) = match &callee.kind {
            ExprKind::Member {
                target,
                name,
                type_args,
                null_conditional,
            } => {
                if let Some(ty) = self.type_path(target) {
                    lib::call_static(self, &ty, name, type_args, vals)?
                } else {
                    let recv = self.eval(target)?;
                    if recv.is_null() {
                        if *null_conditional {
                            return Ok(Value::Null);
                        }
                        return Err(EvalError::null_ref());
                    }
                    let (r, vals) = lib::call_method_out(self, &recv, name, type_args, vals)?;
                    (r, vals)
                }
            }
            ExprKind::Name(n, _) => {
                let f = self.lookup(n).cloned();
                match f {
                    Some(Value::Lambda(c)) => (self.call_closure(&c, vals.clone())?, vals),
                    _ => {
                        return Err(EvalError::invalid_op(format!(
                            "'{n}' is not a method or delegate"
                        )))
                    }
                }
            }
            _ => {
                let f = self.eval(callee)?;
                match f {
                    Value::Lambda(c) => (self.call_closure(&c, vals.clone())?, vals),
                    _ => return Err(EvalError::invalid_op("the expression is not callable")),
                }
            }
        };
        for i in outs {
            let arg = &args[i];
            let v = vals.get(i).cloned().unwrap_or_default();
            match &arg.decl {
                Some((_, name)) => self.declare(name, v),
                None => self.store(&arg.expr, v)?,
            }
        }
        Ok(result)
    }

    /// Invokes a lambda or local function.
    pub fn call_closure(&mut self, c: &Closure, args: Vec<Value>) -> EResult<Value> {
        self.calls += 1;
        if self.calls > self.limits.max_calls {
            self.calls -= 1;
            return Err(EvalError::new(
                LIMIT,
                format!(
                    "calls nested deeper than {} and were stopped",
                    self.limits.max_calls
                ),
            ));
        }
        let saved = if c.env.is_empty() {
            None
        } else {
            // Lambdas see the variables of where they were made.
            Some(std::mem::replace(&mut self.locals, c.env.clone()))
        };
        let mark = self.locals.len();
        for (p, v) in c.params.iter().zip(args) {
            self.declare(p, v);
        }
        let r = match &c.body {
            ClosureBody::Expr(e) => self.eval(e),
            ClosureBody::Block(b) => self.stmts(b).map(|f| match f {
                Flow::Return(v) => v,
                _ => Value::Null,
            }),
        };
        self.locals.truncate(mark);
        if let Some(saved) = saved {
            self.locals = saved;
        }
        self.calls -= 1;
        r
    }
}

/// The leftmost simple name of a dotted chain (`a` in `a.b.c`).
fn head_name(e: &Expr) -> Option<&str> {
    match &e.kind {
        ExprKind::Name(n, _) => Some(n),
        ExprKind::Member { target, .. } => head_name(target),
        _ => None,
    }
}

/// `A.B.C` as a string, when an expression is only names and dots.
pub fn dotted(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Name(n, args) if args.is_empty() => Some(n.clone()),
        ExprKind::Member {
            target,
            name,
            null_conditional: false,
            ..
        } => Some(format!("{}.{name}", dotted(target)?)),
        _ => None,
    }
}

fn literal(l: &Literal) -> Value {
    match l {
        Literal::Null => Value::Null,
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Int(v, kind) => match kind {
            NumKind::Float | NumKind::Double | NumKind::Decimal => Value::Float(*v as f64),
            _ => Value::Int(*v as i64),
        },
        Literal::Real(f, _) => Value::Float(*f),
        Literal::Str(s) => Value::str(s.as_str()),
        Literal::Char(c) => Value::Char(*c),
    }
}

fn unary(op: &str, v: Value) -> EResult<Value> {
    match (op, &v) {
        ("!", Value::Bool(b)) => Ok(Value::Bool(!b)),
        ("-", Value::Int(i)) => Ok(Value::Int(i.wrapping_neg())),
        ("-", Value::Float(f)) => Ok(Value::Float(-f)),
        ("-", Value::TimeSpan(t)) => Ok(Value::TimeSpan(TimeSpan(-t.0))),
        ("-", Value::Char(c)) => Ok(Value::Int(-(*c as i64))),
        ("+", Value::Int(_) | Value::Float(_)) => Ok(v),
        ("~", Value::Int(i)) => Ok(Value::Int(!i)),
        ("!", Value::Json(j)) => match &*j.lock() {
            JNode::Bool(b) => Ok(Value::Bool(!b)),
            _ => Err(EvalError::invalid_cast("JToken", "Boolean")),
        },
        (_, Value::Null) => Err(EvalError::null_ref()),
        _ => Err(EvalError::invalid_op(format!(
            "operator '{op}' cannot be applied to a {}",
            v.type_name()
        ))),
    }
}
