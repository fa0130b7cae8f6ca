//! The report's inline style and script: written here, never fetched, so the page needs
//! nothing but itself (and its folder, for linked pictures).
//!
//! The script sorts a `sortable` table by the clicked column and pages every `paged` table
//! (its body's rows) and `paged` list (its children): past 50 items only one page stays in
//! the document, the rest are held aside, so 2 000 trials do not make 2 000 live rows. A
//! pager shows which items are in view, moves between pages and can show 200, 1 000 or
//! all at once; sorting orders every item, then shows the first page. A link to an item held
//! aside (a summary label to its trial, `#trial-<i>`) turns its list to the item's page.
//! Without scripts every row shows.

pub(super) const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:0.5em 0}th,td{border:1px solid #ccc;padding:2px 8px;\
text-align:right}td:first-child,th:first-child{text-align:left}\
table.sortable th{cursor:pointer;background:#f3f3f3}tr.failed td{background:#fde8e8}\
tr.missing td{color:#999}p.failed{color:#a00}figure{display:inline-block;margin:0.5em}\
img{max-width:640px}article.trial{border-top:1px solid #ddd;padding-top:0.5em}\
dt{font-weight:bold}dd{margin:0 0 0.3em 1em}table.config td{text-align:left}\
nav.pager{margin:0.5em 0}nav.pager button,nav.pager select{margin-right:0.3em}";

/// Paging first (a pager holds its items), then sorting (which sorts a pager's items).
pub(super) const SCRIPT: &str = "var PAGE=50;\
function pager(box){var items=Array.prototype.slice.call(box.children);\
if(items.length<=PAGE)return;var size=PAGE,page=0;\
var nav=document.createElement('nav');nav.className='pager';nav.dataset.items=items.length;\
function pages(){return Math.ceil(items.length/size);}\
function button(text,to){var b=document.createElement('button');b.type='button';\
b.textContent=text;b.addEventListener('click',function(){page=to();show();});\
nav.appendChild(b);return b;}\
var first=button('\u{ab} first',function(){return 0;});\
var back=button('\u{2039} previous',function(){return page-1;});\
var shown=document.createElement('span');nav.appendChild(shown);\
var next=button('next \u{203a}',function(){return page+1;});\
var last=button('last \u{bb}',function(){return pages()-1;});\
var choice=document.createElement('select');[50,200,1000,0].forEach(function(n){\
var o=document.createElement('option');o.value=n;o.textContent=n?n+' a page':'all';\
choice.appendChild(o);});nav.appendChild(choice);\
choice.addEventListener('change',function(){size=Number(choice.value)||items.length;\
page=0;show();});\
function show(){var start=page*size;box.textContent='';\
items.slice(start,start+size).forEach(function(item){box.appendChild(item);});\
shown.textContent=' '+(start+1)+'\u{2013}'+Math.min(start+size,items.length)+' of '+\
items.length+' ';first.disabled=back.disabled=page===0;\
next.disabled=last.disabled=page>=pages()-1;}\
var at=box.tagName==='TBODY'?box.parentNode:box;at.parentNode.insertBefore(nav,at);\
box.pager={items:function(){return items.slice();},\
set:function(list){items=list;page=0;show();},\
reveal:function(id){var i=items.findIndex(function(item){return item.id===id;});\
if(i<0)return false;page=Math.floor(i/size);show();return true;}};show();}\
function reveal(hash){var id;try{id=decodeURIComponent(hash);}catch(e){id=hash;}\
if(!id||document.getElementById(id))return;\
document.querySelectorAll('.paged').forEach(function(p){var box=p.tBodies?p.tBodies[0]:p;\
if(box.pager&&box.pager.reveal(id))document.getElementById(id).scrollIntoView();});}\
document.addEventListener('click',function(e){var a=e.target.closest('a[href^=\"#\"]');\
if(a)reveal(a.getAttribute('href').slice(1));});\
window.addEventListener('hashchange',function(){reveal(location.hash.slice(1));});\
document.querySelectorAll('table.paged').forEach(function(table){pager(table.tBodies[0]);});\
document.querySelectorAll('div.paged').forEach(pager);\
reveal(location.hash.slice(1));\
document.querySelectorAll('table.sortable').forEach(function(table){\
var heads=table.querySelectorAll('th');heads.forEach(function(th,col){\
th.addEventListener('click',function(){var body=table.tBodies[0];\
var rows=body.pager?body.pager.items():Array.prototype.slice.call(body.rows);\
var up=th.dataset.order!=='up';\
heads.forEach(function(h){delete h.dataset.order;});th.dataset.order=up?'up':'down';\
rows.sort(function(a,b){var x=a.cells[col],y=b.cells[col];\
var p=parseFloat(x.dataset.value),q=parseFloat(y.dataset.value);\
var r=(isNaN(p)||isNaN(q))?x.textContent.localeCompare(y.textContent):p-q;\
return up?r:-r;});\
if(body.pager){body.pager.set(rows);}else{rows.forEach(function(row){body.appendChild(row);});}\
});});});";
