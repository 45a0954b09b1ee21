"""Build ``train.tsv`` and ``heldout.tsv`` for the answer-intent classifier.

The corpus is hand-written: each section below lists phrasings of one intent under one
or more topics, as a callee would say them on the phone. A line holding ``{slot}``
markers is a *template*; it is expanded with a few values drawn from :data:`SLOTS`.

Splitting is by phrasing, not by row: the ``TRAIN`` and ``HELDOUT`` blocks are written
separately and held-out templates never occur in train, so a templated sentence cannot
leak into the other split through a different slot value. Rows whose text (without
punctuation) occurs in both splits are dropped from held-out, and sentences from the
public persona sample are never used (rows equal to a persona answer are dropped).

Noise imitates what Whisper returns on a phone line, applied deterministically with a
fixed seed: fillers (嗯, 那个, 就是说), dropped punctuation, same-pinyin character swaps
(pypinyin, tone-aware, e.g. 验证码 -> 验正码) and Traditional script (OpenCC s2t).
In train a noisy copy is *added* beside some rows; in held-out some rows are *replaced*
by their noisy form (so the held-out split measures robustness without duplicates).

Run ``python -m nlu.intent.corpus.build_corpus`` (writes next to this file).
"""

from __future__ import annotations

import argparse
import csv
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pypinyin import Style, lazy_pinyin

HERE = Path(__file__).resolve().parent
SEED = 20260521
ALL_TOPICS = (
    "identity",
    "card_purpose",
    "fund_source",
    "card_custody",
    "counterparty",
    "occupation",
    "default",
)
QUESTION_TOPICS = ALL_TOPICS[:-1]

SLOTS: dict[str, tuple[str, ...]] = {
    "name": ("王芳", "刘建军", "陈晓红", "赵磊", "孙丽", "周强", "黄晓明", "马超", "许静", "何勇"),
    "fam": (
        "老婆",
        "老公",
        "爱人",
        "媳妇",
        "儿子",
        "女儿",
        "爸",
        "妈",
        "哥",
        "姐",
        "弟弟",
        "妹妹",
        "老伴",
        "对象",
        "父亲",
        "母亲",
    ),
    "kin3": ("老婆", "老公", "妈妈", "爸爸", "儿子", "女儿", "姐姐", "哥哥", "爱人", "奶奶"),
    "friend": ("朋友", "同学", "同事", "老乡", "室友", "一个哥们", "网友", "工友"),
    "money": ("五百", "八百", "一千", "一千五", "两千", "三百", "六百", "一千二"),
    "job": (
        "老师",
        "护士",
        "司机",
        "厨师",
        "保安",
        "会计",
        "快递员",
        "电工",
        "销售",
        "程序员",
        "服务员",
        "外卖骑手",
        "装修工",
        "仓管",
    ),
    "place": ("广州", "深圳", "佛山", "东莞", "惠州", "江门", "湛江", "汕头", "中山", "珠海"),
    "busy": ("开车", "开会", "上班", "吃饭", "带孩子", "干活", "上课", "看病", "工地上"),
    "later": ("晚点", "等会儿", "过一会儿", "下午", "晚上", "明天", "半小时以后", "回头"),
    "cred": ("验证码", "密码", "U盾", "手机银行的账号密码", "网银", "登录密码", "短信验证码"),
}

# ---------------------------------------------------------------------------------------
# TRAIN phrasings. "== label @ topics" opens a section; topics are comma separated, "*"
# means every question topic. Lines starting with "#" are comments.
# ---------------------------------------------------------------------------------------
TRAIN = """
== affirm @ identity
是的是的
对，是我
嗯，我就是
对对对，我本人
没错，是我啊
是我啊，你哪位
是我，有什么事吗
嗯嗯是我
我就是啊
是本人，你说
对的，我就是本人
哎，是我，你讲
是的呀
喂，对，是我，什么事啊
嗯对，我是
是我是我，你说吧
本人，怎么了
系我啊，乜事
是滴
对头，就是我
嗯呐，是我
俺就是
是我，我刚下班，你说
是，你哪里啊
那个，是我，怎么啦
就是我，有啥事
我是{name}，你说
对，我是{name}本人
嗯，{name}就是我
我就是{name}，什么事情
是我，我就是{name}啊
哎对对，我是
你好，我就是，说吧
是的，请讲
== affirm @ default,card_custody
对
对的
嗯
嗯嗯
是
是啊
好
好的好的
行
可以
没问题，你说
好，你问吧
明白了
知道了
清楚了
嗯，好的
对，没错
是这样的
对对
行行行
可以可以
好嘞
得嘞
要得
中
嗯呐
是的没错
对，就是这样
好的，我知道了
OK
好吧，那你问
可以，你继续
对啊，怎么了
没错没错
是的，确认
确认无误
对的对的，没问题
== deny @ identity
不是
不是的
不是我
不是本人
我不是
你搞错了吧，我不是
不是啊
唔系
不是不是
我不是他
不是哦
不对，我不是这个人
我不是你说的那个人
啊？不是我
== deny @ default,card_custody
不是
没有
没有没有
不对
不是这样的
没
没有的事
没得
莫得
冇
不是的，你听错了
没有啊
从来没有
不是，不对
没有过
没有，没这回事
不对不对
哪有啊，没有
绝对没有
没有哦
不用了
算了不用
不需要
== deny @ counterparty
不认识
我不认识这个人
不认识他
这人我不认识
没听说过这个人
没印象，不认识
不认识，没打过交道
== wrong_number @ identity
打错了
你打错了
打错电话了吧
你们打错了，没这个人
没有这个人
我们这没有叫{name}的
我不认识什么{name}
不认识这个人，你打错了
这个号码是我刚办的，不知道以前是谁的
这号我用了好几年了，没有叫这个名字的
你找谁啊？没这个人
搞错了吧，这里没有这个人
{name}？不认识，你打错了
号码错了
这是公司座机，没有叫{name}的
我姓李，不姓这个，你打错了
你说的人我不认识
打错了打错了
这个号以前可能是别人的，我新换的卡
不是这个号吧，你再查查
== third_party @ identity
他不在，我是他老婆
我是他妈妈，他出去了
你找我儿子什么事
他上班去了，手机落家里了
我是他{kin3}，有什么事跟我说
她现在不在家，我是她{kin3}
这是我老公的手机，他在洗澡
我是她女儿，我妈不会用手机
他去外地了，我是他爸
你找{name}啊？他不在，我是他家里人
她睡了，我是她老伴
我帮他接的，他在楼下
你找我爸干嘛，我是他儿子
他在厂里上班，手机放我这儿了
我是他同事，他手机放桌上了
我是他{kin3}，你跟我说就行
你们找我老婆干什么
他人在医院，我是他哥
我是他领导，他出去办事了
哦你找她啊，我是她婆婆，她出门了
他在睡觉，我是他{kin3}
那个，他不在，我是他室友
他手机在我这儿，我是他朋友
这是我儿子的号，他还在学校
她去买菜了，我是她{kin3}，什么事
== voicemail @ identity,default
您好，您拨打的用户暂时无法接听
您拨打的电话已关机
对不起，您拨打的用户已停机
您拨打的号码是空号，请查证后再拨
您拨打的电话正在通话中，请稍后再拨
您拨打的用户暂时无法接通，请稍后再拨
对不起，您拨打的电话暂时无法接通
您拨打的电话不在服务区
请在提示音后留言
您好，机主现在不方便接听，请在嘀声后留言
您好，您拨打的电话已开启来电提醒，我们会短信通知机主
你好，我是机主的智能助理，请问您有什么事
您好，我是机主的秘书，机主暂时无法接听
您拨打的用户忙，请稍后再拨
你好，我现在不方便接电话，有事请留言
请留言，留言完毕请挂机
the subscriber you dialed is not available
the number you have dialed is power off
sorry the subscriber you dialed cannot be connected at the moment
the subscriber you dialed is busy please redial later
please leave a message after the tone
您拨打的电话已呼叫转移，请稍候
您好，您所拨打的电话正忙，请稍后再拨
您拨打的用户已设置呼叫限制
对不起，您呼叫的用户暂时无法接通，请稍后再拨，sorry
我现在无法接听，请留下您的姓名和电话，我会尽快回复
您好，这里是语音信箱，请在嘀声后留言
您拨打的号码已过期
对不起，您拨打的号码暂停服务
嘟嘟嘟，您拨打的用户无应答
您好，您拨的电话暂时无人接听，请稍后再拨
这是自动语音，请按提示音留言
您好，我是来电秘书，请问您找机主有什么事
== busy_callback @ *
我在开车，晚点再打
我在开会，等会儿再说
现在不方便，等会儿
我在忙，你过会儿打过来
在{busy}呢，{later}再打吧
我正{busy}，{later}你再打
{later}再说吧，现在没空
现在没时间，{later}打给我
我这会儿在{busy}，不方便接
你{later}再打过来行不行
哎呀我在{busy}，回头说
现在忙着呢，改天吧
没空没空，晚上再打
等我下班再说吧
我在地铁上，听不太方便，晚点打
正在上班不能接电话，中午再打
你一个小时以后再打
现在不方便讲电话，你明天打吧
我在医院排队呢，过会儿再说
等一下再打给我，我这边有事
手上有事，你先挂了，等会我回你
这会儿不行，你晚点联系我
我在外面办事，回去再说
我马上要进会议室了，等会打
在高速上开车呢，下了再说
现在正忙，你迟点打过来
家里来客人了，过一会儿再打
我在{busy}，你{later}打过来好吧
你先别说了，我这边忙，明天再联系
哎我现在很忙，过两个小时吧
我在喂孩子，等会再打行吗
现在不方便接，一会儿给你回过去
能不能晚点，我这会走不开
== refuse @ *
我不想回答
这是我的隐私
不告诉你
跟你有什么关系
我不方便说
这个我不想说
关你什么事
你管得着吗
没必要跟你说吧
凭什么告诉你
这个属于个人隐私，不方便透露
无可奉告
我拒绝回答
不说
我不回答这个问题
这些我不想讲
你们别再打了，烦不烦
不要再打过来了
我怎么知道你是不是骗子，不说
你是骗子吧，我不会告诉你的
我挂了啊
我要投诉你们
这种事不用你们管
问那么多干嘛，不想讲
我的事你们少管
我有权利不回答
这个就不方便告诉你了
你问这个干嘛，我不说
别问了，我不想说
不关你们的事
我不想讲，你直接说要干嘛吧
有啥好说的，不说
去去去，别烦我
我不会在电话里说这些的
电话里说不清楚，我不说，你们也别问了
这个问题我不回答
我没义务告诉你
这个我保留，不回答
甭问了，不讲
个人的事情不想多说
== ask_repeat @ *
你说什么
什么？
再说一遍
没听清
喂？喂？
啊？你说啥
我没听清楚，你再讲一次
信号不好，听不清
大声一点，听不见
你刚才说什么
重复一下可以吗
不好意思没听到，再说一次
啥？
哈？什么意思
你说慢一点，我没听懂
喂，你说话啊
声音太小了，听不到
你能再说一遍吗
刚刚那句没听见
啊？
喂喂喂，听得到吗
你说的啥子哦
什么卡？再说一下
你讲慢点，我耳朵不好
听不懂你说的，再讲讲
你刚问的是什么
喂，你那边说什么，听不清楚
你问啥？
怎么说？再来一遍
等一下，你刚说哪张卡
== unclear @ *
不知道
记不清了
忘了
可能吧
好像是吧
不太清楚
这个我也说不好
不记得了
不清楚啊
大概吧
也许吧
我也搞不清楚
谁知道呢
想不起来了
时间太久了，记不得了
嗯……这个嘛，不好说
说不准
晓不得
不晓得哦
我也不太懂这些
好像有，又好像没有
应该是吧，我也记不太清
这个怎么说呢
可能是，也可能不是
不太确定
我得想想
我也不明白
这个嘛，反正就那样吧
我老糊涂了，记不住
哎呀，这个我真不知道
反正差不多吧
说不清楚
好多年前的事了，忘记了
嗯，那个，我想一下哈，不记得了
随便吧
也不一定
我哪知道
很早以前办的了，干啥用的早就忘了
这卡好多年没用了，当时为什么办的记不得了
钱的事我记不太清楚，大概是谁还我的吧
这么久了我哪还记得，可能是吧
== unclear @ counterparty
这个人我没什么印象了
名字听着熟，但是想不起来是谁
好像见过，想不起来是谁
这个名字有点耳熟，说不上来
== inform @ card_purpose
发工资用的
公司统一办的工资卡
就是平时买菜交水电费用的
存钱用的
做生意收款用
还房贷用的，每个月扣款
给孩子交学费办的
上大学的时候学校统一办的
办社保的时候一起办的
网上有人说办张卡可以赚钱，我就办了
当时为了买理财开的
那个，就是平时收收租金
用来收{friend}转过来的钱
开网店收款用的
我是做外贸的，收货款
为了还信用卡办的
就是日常花销，刷刷微信支付宝
给我{fam}转生活费用的
拿来领养老金的
公司说要开个户发提成
办来贷款用的，银行说要有这个卡
我在{place}打工，办了发工资
之前买车分期，要绑定一张卡
炒股用的，绑了证券账户
平时收快递代收的款
哦，那是办来收兼职工资的
刚来{place}的时候办的，存点钱
开车跑滴滴，平台打钱到这张卡
拿来交房租的
领补贴用的，村里让办的
嗯，主要是给老家寄钱
网上买东西绑的卡
做微商的，收客户的钱
== inform @ fund_source
工资
是我的工资，每个月{place}那边公司发的
我老公转给我的生活费
卖二手车的钱
{friend}还我的钱
理财到期转回来的
客户付的货款
我自己攒的
房租收入
年终奖发的
是卖房子的钱，买家转过来的
做兼职赚的，帮人刷单
别人打进来，我再转出去，帮人走流水
我爸给我的，让我交首付
借{friend}的钱，准备做生意
是保险理赔的钱
拆迁款
在网上卖东西赚的
那是工程款，老板结的
就是些日常转账，买东西付的钱
孩子在外地打工寄回来的
炒股赚的，从证券账户转出来
是我{fam}转给我的，家里用
给我{fam}看病的钱，亲戚凑的
我帮{friend}收的钱，他没有卡
有人让我帮忙收款，给我好处费
那个钱是网上兼职群里让转的
卖粮食的钱，粮站打过来的
嗯，就是开店的营业款
退休金，每个月都有
朋友找我周转，我借给他的
公积金提出来的
分红的钱
那是我还信用卡的钱
是装修的钱，转给装修队了
== inform @ counterparty
是我表哥
是我老板
是我的客户
网上认识的一个人
那是我{fam}
他是我{friend}
是我们公司财务
房东，我给他交房租
是我以前的同事
是卖家具的老板
他是我生意上的合作伙伴
那是装修公司的
游戏里认识的网友
是我在{place}的老乡
是兼职群里的一个管理员
是我女朋友
那个是我二姨
是供货商
是贷款公司的人
他是我房客
是我小孩的班主任，交的资料费
是我请的保姆
不认识，是兼职群里让我转给他的
我也不认识，是网上一个客服让转的
那是我{fam}的朋友
是物流公司的，结运费
我师傅，带我干活的
是车行的，买车的钱
嗯，他是我同村的
是我们老板的小舅子
不熟，就是打麻将认识的
== inform @ occupation
我是{job}
在工厂上班
送外卖的
退休了
没工作
在家带孩子
大学生
个体户，开了个小饭馆
打零工的
在{place}做{job}
我在一家电子厂当普工
种地的，农民
我在超市当收银员
我自己开了个小卖部
跑货车的
现在待业，在找工作
我在{place}一个工地上做{job}
做房产中介
在医院当{job}
在银行上班
开出租车的
我是公务员
做微商
我在物流公司当{job}
目前在读研究生
在家做全职太太
自己做点小生意，卖水果
搞装修的
我是{job}，在{place}干了五六年了
嗯，那个，在餐馆帮厨
我在网上做直播
保险公司上班
做保洁的
当兵的，刚退伍
== inform @ card_custody
卡丢了，还没去挂失
那张卡早就注销了
卡被冻结了，一直没用
卡在抽屉里放着，很久没动了
手机换了，手机银行好久没登
== custody_self @ card_custody
都是我自己保管的
卡在我身上
卡和手机都在我手上
一直是我自己在用
我自己拿着呢
我从来没有借给别人
卡没借给过任何人
密码只有我自己知道
没给过别人，都在我这
就我自己用，没别人碰过
我自己保管，放钱包里的
卡和密码都是我自己管
手机银行也是我自己登录的
没有卖，也没有借，在我自己手里
从来不借人的
没有告诉过别人密码
验证码从来没给过别人
我自己在用，好好的
卡就在我这儿呢
没有没有，都是我自己用
放家里了，我自己收着
一直在我口袋里
我没把卡给别人
不是借的，一直自己用
我这人谨慎，卡从不离身
没出租也没卖过
那卡一直是我的，谁也没给
都是本人保管，没问题
是我自己的，我自己在管
我自己在用，密码别人不知道
没有，卡一直在我自己身上
U盾也在我这儿
网银只有我自己能登
我没把密码告诉过任何人
没有借出去过
我自己保管着呢，放心吧
卡在我钱包，手机在我手上
== custody_family @ card_custody
卡给我老婆在用
我妈帮我保管
给我{fam}用了
我{fam}拿着的
卡在我{fam}那里
平时是我{fam}在用
我{fam}帮我管钱，卡在她那
卡放我{fam}那儿了，她买菜用
交给我{fam}了
我出去打工，卡留给家里{fam}了
那个卡是我儿子在用，他上学
我女儿拿去用了，她在外地读书
我老伴管着，我不会弄这些
卡一直是我爱人拿着
手机银行是我{fam}帮我弄的，他在用
我{fam}用我的卡发工资
家里人在用，我{fam}
我岁数大了，卡和密码都给我儿子了
我{fam}在管，我不太清楚
嗯，那个卡是给我{fam}的，他没办卡
我哥借去用了，自己家人
== custody_lent @ card_custody
借给朋友用了
借给{friend}了
我{friend}借去用了
卡借出去了，{friend}说用几天就还
前段时间借给一个{friend}，还没还
{friend}说他的卡被冻了，借我的用一下
我借给{friend}收货款了
被我{friend}拿去用了
给{friend}用了一段时间
卡在{friend}那儿，他借去周转
我同事找我借的，说用完就还
借给老板用了，他说公司账户不方便
以前借给别人用过
那卡我借给一个认识的人了
嗯，是借出去了，借给我{friend}
{friend}找我借，我就给他了
不是卖的，是借给{friend}的
没卖，就是借给{friend}用了
借人了，人家说过两天还我
借给{friend}帮他收钱，没收好处
卡给{friend}用了，他自己卡办不下来
== custody_sold @ card_custody
卖给别人了
租出去了，一个月给我五百
有人收卡，给了我八百块
卡卖了
卖掉了
我把卡卖给一个人，他给了我{money}
租给别人用了，一个月{money}
有人出{money}收我的卡，我就给他了
我把卡租出去了
卡和手机银行一起卖了，给了{money}块
网上有人收卡，我卖了
租给一个老板，他每个月给我{money}
对方出钱买了我的卡
出租了，每个月给我点钱
卖给了收卡的，给{money}块
给人家用，人家给我钱，一个月{money}
我把卡给他，他给了我{money}块钱
不是借的，是卖给他了
一张卡{money}，我就卖了
卖了，卖给网上认识的人了
被人高价收走了
我开了卡就给了中介，他给我{money}
== credentials_shared @ card_custody
验证码发给对方了
密码告诉别人了
U盾给他了
我把{cred}发给对方了
{cred}告诉过{friend}
{cred}我给了别人
把{cred}报给他了
他打电话要{cred}，我就说了
手机银行的账号密码给了{friend}
我把{cred}借给{friend}了
对方让我念{cred}，我念给他了
网银是别人在登，我把密码给他了
卡在我这，但{cred}给对方了
{cred}发过去了，他说帮我办贷款
我把手机银行登录信息告诉别人了
短信验证码我转发给他们了
卡没给别人，就是把{cred}告诉了{friend}
U盾和密码都给老板了
他说是客服，我把验证码给他了
我给对方说过{cred}
== affirm @ identity
我是{name}，找我什么事
你找我有什么事，我就是
是我，你们找我干嘛
== inform @ card_purpose
这张卡是我当年在{place}上班的时候办的，主要是发工资，后来也拿来存钱
我开了个小卖部，顾客扫码付钱都进这张卡，平时进货也从这里转
开卡那会儿是为了交社保，后来又绑了微信，日常买东西都用它
当时有个中介说帮我办贷款，要我新开一张卡，我就去银行办了
我家孩子在外地上学，我办这张卡每个月给他打生活费
== inform @ fund_source
那笔钱是我把老家的房子卖了，买家分两次打给我的，我又转去还了房贷
这几万是我这些年打工攒下来的，从别的银行转过来准备买理财
是我们老板结的工钱，年底一起发的，我再转了一部分给家里
钱是网上一个人打给我的，他说让我帮忙转到另一个账户，给我一点辛苦费
我做水果批发的，这是客户付的货款，过两天我还要付给果园
== inform @ counterparty
{name}是我{fam}
{name}是我们公司的会计
{name}是我以前在{place}的同事
我不知道他真名叫什么，是在网上认识的
不清楚他是谁，是一个兼职群里的人让我转的
名字我记不住，是在{place}做生意时认识的客户
== custody_self @ card_custody
卡放家里了，就我自己用
卡在家里抽屉放着，别人拿不到
== custody_self @ card_custody
卡我一直随身带着
哪能给别人啊，都是我自己拿着
我一个人用，家里人都不碰
没，没给过谁，在我这
放心，卡和U盾都是我本人保管
手机银行绑的是我自己的手机
我这张卡谁都没给过
没租没卖，好好在我手上呢
我没有借给任何人用过
没有把卡给别人，密码也没说过
自己的卡当然自己保管
嗯，我自己用着的，没问题
卡在我包里，一直都在
没有外借，就我自己
== wrong_number @ identity
你找的这个人不在这个号码
不是这个人的电话
没有这个人啊，你搞错了吧
这个号不是他的了
我不知道你说的是谁，打错了
你要找的人不是我，我不认识他
== deny @ default,card_custody
没，没有
没有这种情况
那肯定没有啊
"""

# ---------------------------------------------------------------------------------------
# HELDOUT phrasings: written separately; no line here is a train line or template.
# ---------------------------------------------------------------------------------------
HELDOUT = """
== affirm @ identity
嗯，我是，你是哪里
对呀，是我本人
是我是我，怎么了
没错，本人
对，我就是他，你说
喂，是我，讲
嗯，对对，就是我本人
是俺，咋了
我是{name}，找我有事吗
是，我是{name}
== affirm @ default,card_custody
好的好的好的
对头
是嘞
可以的
没错的
嗯，可以
那行
没毛病
是是是
== deny @ identity
我不是啊
不是我，你找错人了吧
你说的不是我
== deny @ default,card_custody
没有的
没有呀，哪有
从来都没有过
都没有
不是不是，没那回事
== deny @ counterparty
压根不认识
我根本不认识他
== wrong_number @ identity
你们打错号了
这儿没有叫{name}的人
我这是新号，不认识你说的人
谁？不认识，打错了吧
你拨错号码了
号码弄错了，我不是他
== third_party @ identity
他不在家，我是他{kin3}
我是她{kin3}，她手机落我这了
你找我{kin3}干什么，他没在
这手机是我老公的，他出差了
她上夜班在睡觉，我是她妈
我是他家属，他人不在
孩子在学校呢，我是他妈妈
他下地干活去了，我是他爹
== inform @ card_purpose
办这张卡是因为单位要求，每个月工资都打到这里，我也拿它还车贷
我是开网约车的，平台的收入都结算到这张卡上
== inform @ fund_source
这钱是我姐姐借给我的，我准备拿去交孩子的学费，已经转给学校了
是我卖了两头牛的钱，收牛的老板直接转给我的
== inform @ counterparty
{name}是我{kin3}的同学
我不晓得他叫啥，是打游戏认识的
== voicemail @ identity,default
您拨打的电话暂时无法接通
您好，您所拨打的号码已关机
对不起，您拨叫的用户不在服务区
您好，请在嘀的一声后留言
对不起，您拨打的号码不存在
您拨打的用户正忙，请稍后再拨
the number you dialed is not in service
sorry the subscriber is power off please call later
你好，机主暂时无法接听，请留言
您好，您拨打的电话已停机
我是机主的语音助手，他现在不方便接听
== busy_callback @ *
我现在在{busy}，你{later}打吧
我这边有点事，一会再说
开着车呢，不方便
等我{later}有空了你再打
正在忙呢，过会儿
在外面跑业务，回去再打给我
不好意思现在走不开，晚一点
我在上课，下课再说
在陪客户，等一下打
现在不方便讲，回头你再联系我
== refuse @ *
不想告诉你
这是个人隐私，我不说
说了你也管不着
这个问题我拒绝
你们管这么多干嘛
我为什么要告诉你
别问了，我不会说的
这个没必要回答
我不想透露
不讲，挂了
我的私事不用你操心
反正我不说
== ask_repeat @ *
你说啥，我没听见
再讲一遍可以吗
不好意思，刚刚信号断了，你说什么
喂？听不清啊
你再重复一下
嗯？什么
你说的什么意思，没听明白
喂，你大点声
什么，再说一次
== unclear @ *
我也不清楚
忘记了
记不太得了
好像吧
应该是吧
不太知道
我也说不准
大概是吧，我也不确定
这个还真不好说
不记得了哎
想不起来了，太久了
我搞不明白
可能是，也说不好
嗯……不知道怎么说
== inform @ card_purpose
主要是收工资
交社保医保用的
平时转账用
办来存定期的
之前在{place}打工时办的，发工资用
做小生意用来收钱的
给老家父母转钱用
买基金用的
绑定微信用的，平时花钱
有个朋友叫我办的，说帮他走账
== inform @ fund_source
是我上班的工资
家里卖猪的钱
我{fam}打给我的
我帮人收的货款
是一笔贷款，刚下来的
工地的工钱，包工头发的
是我自己的存款转过来的
{friend}让我帮他转一下的
我炒币赚的钱
就是网上刷单的佣金
== inform @ counterparty
是我{fam}
是我的一个{friend}
他是我们店的客户
是我房东
是网上认识的，没见过面
是我债主，还他钱
我舅舅
是工地的老板
是我合伙人
== inform @ occupation
我是做{job}的
在{place}的一家工厂上班
在家种菜
我现在没上班
在读高中
开小吃店的
在快递公司干活
退休在家
我是跑网约车的
== inform @ card_custody
卡好像弄丢了
那张卡已经销户了
== custody_self @ card_custody
卡一直在我身边
我自己管着呢
没借过人，我自己用
密码就我一个人知道
从来没给别人用过
没卖也没租，卡在我手里
都在我自己这儿
手机银行只有我自己在用
没有告诉别人，验证码都是我自己看
== custody_family @ card_custody
我{fam}在用这张卡
那张卡一直放我{fam}那儿
我{fam}帮我管着呢
卡让我{fam}拿去用了
家里的钱都是我{fam}管，卡在他手上
是我妈在拿着，她帮我存钱
== custody_lent @ card_custody
{friend}借走了
我借给了一个{friend}
借出去了，{friend}在用
{friend}问我借卡，我借了
是借给别人了，没收钱
卡让{friend}借去了，说过几天还我
== custody_sold @ card_custody
卖了，给了我{money}块
我把卡出租了
租给人家了，按月给钱
有人花{money}块买了我的卡
卖给了网上的人
给别人用，他们给我租金
卖出去了，还有手机卡一起
== credentials_shared @ card_custody
我把{cred}告诉了对方
{cred}给别人了
把{cred}发过去了
{cred}让{friend}知道了
我把验证码念给对方听了
对方拿着我的{cred}
手机银行账号借给别人登了
== wrong_number @ identity
我这个号码才买的，你找的人我不认识
你打的这个号不是他的
没有叫这个名字的，你看错号了吧
== third_party @ identity
我是她{kin3}，她现在出门了，你说吧
他没空接，我是他老婆，你找他啥事
这手机是我儿子的，我帮他接一下
== voicemail @ identity,default
您好，您拨打的用户已关机，请稍后再拨
对不起，您拨打的用户暂时无法接听，请稍后再拨
您好，我是机主的AI助理，请说出您的来意
您好，您拨打的号码正在通话中
请在提示音之后录下您的留言
== busy_callback @ *
我现在有事，等会儿打给你
现在在开会不方便说话，散会了再说
在厨房做饭呢，过一会儿再打来
下午三点以后打吧，现在忙
今天都没空，明天打吧
你先挂吧，我忙完了回你
== refuse @ *
你不要问了，我不会说的
我凭什么要回答你
我的事你别管
这种私人问题我不回答
我不想跟你们说这些
这个就不告诉你们了
== ask_repeat @ *
你刚说的是什么
没听清你说的啥，再来一遍
啊？哪张卡
什么？我这边听不清楚
喂喂，你说话
你说慢点，再说一次
== unclear @ *
我哪晓得
这个说不好
记得不太清楚了
想不起来
好像是的吧，我也记不准
大概可能吧
这我还真不清楚
不好说，差不多吧
我糊涂了，记不住这些
== affirm @ identity
嗯，是我，你讲吧
是的是的，本人
对的，我是
是我呀，什么事情
就是我本人，你讲
== affirm @ default,card_custody
好，没问题
行，可以的
嗯，是的
对的，是
确实是
== deny @ default,card_custody
没有，没这事
不是，没有
不对的
肯定没有
== inform @ card_purpose
是我买房贷款时银行让办的
收我卖菜的钱
我做代购，收货款的
孩子上学要交费，就办了这张卡
那时候找工作，公司要一张卡发工资
说是办卡送油，就办了一张
== inform @ fund_source
是我在{place}打工挣的
我妈转给我的，叫我交房租
帮一个{friend}收的，他让我转给别人
卖车的钱，买家打的
公司报销的差旅费
网上一个兼职，帮人转账赚佣金
== inform @ counterparty
是我们村的，找我借钱
是微信上认识的一个网友
是收货款的客户，做生意认识的
是我{fam}，我们是一家人
是之前工地上的包工头
== inform @ occupation
我在{place}开货车
在商场卖衣服
做会计的，在一家小公司
我还在读大专
在家务农
给人开车当司机
== custody_self @ card_custody
我自己收着，别人拿不到
从来没给过别人，都是自己在用
没有借也没有卖，卡在我手上
手机和卡都在我自己身上
我没告诉过别人密码，卡也在我这
== custody_family @ card_custody
卡给我{fam}了，她在用
我{fam}平时拿着这张卡
那卡我家{fam}在用，给孩子交学费
交给家里{fam}保管了
== custody_lent @ card_custody
我{friend}跟我借了，还没还回来
卡在{friend}手上，借他用的
借出去给人用了，一个熟人
== custody_sold @ card_custody
卡已经卖掉了
有人来收卡，我卖了{money}
租出去给人家用，一个月拿{money}
我是把卡卖给中介了
== credentials_shared @ card_custody
密码我跟{friend}说过
验证码被我发给那个客服了
我把网银密码给对方了
把U盾交给老板了
"""

# Slot values drawn per template occurrence.
TEMPLATE_SAMPLES = {"train": 4, "heldout": 3}
# Probability that a row gets a noisy copy (train) / is replaced by its noisy form.
NOISE_RATE = {"train": 0.45, "heldout": 0.35}
# Generic sections ("*") are emitted under this many topics in train (once in held-out).
GENERIC_TOPICS_PER_LINE = {"train": 2, "heldout": 1}

FILLER_PREFIXES = ("嗯，", "那个，", "就是说，", "啊，", "呃，", "喂，", "哦，", "这个，", "我说，")
FILLER_SUFFIXES = ("啊", "吧", "呀", "哈", "嘛", "哦", "了")
PUNCT = re.compile(r"[，。！？、,.!?；;…]+")
# Characters the homophone swapper draws from, besides the corpus's own characters.
EXTRA_CHARS = (
    "正证政帐账仗丈张章彰掌长涨脏葬奖讲将江匠降见件建健间坚监兼减检简"
    "见剑鉴公工功攻共供宫弓司丝私思斯死四似寺事是市式室世试视适示士实时十石识"
    "在再载灾宰记己计技既济纪继际寄几机基击鸡激及级即极集急借接节结解姐界介届戒"
    "卖买麦脉埋迈密秘蜜觅米迷谜码马吗妈骂嘛麻代带待袋戴贷大达答打搭用永勇拥涌"
    "保宝报饱抱暴爆包胞卡咖开凯慨管馆贯惯灌关观官冠冤元园原员圆源远院愿怨"
)


@dataclass(frozen=True, slots=True)
class Row:
    topic: str
    text: str
    intent: str


@dataclass(frozen=True, slots=True)
class _Line:
    intent: str
    topics: tuple[str, ...]
    text: str


def parse_block(block: str) -> Iterator[_Line]:
    """Yield one entry per phrasing line of a TRAIN/HELDOUT block."""
    intent = ""
    topics: tuple[str, ...] = ()
    for raw in block.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("=="):
            head, spec = line[2:].split("@")
            intent = head.strip()
            spec = spec.strip()
            topics = QUESTION_TOPICS if spec == "*" else tuple(t.strip() for t in spec.split(","))
            unknown: set[str] = set(topics) - set(ALL_TOPICS)
            if unknown:
                raise ValueError(f"unknown topics {unknown} in section {line!r}")
            continue
        if not intent:
            raise ValueError(f"phrasing before any section: {line!r}")
        yield _Line(intent, topics, line)


_SLOT = re.compile(r"\{(\w+)\}")


def expand(text: str, n: int, rng: random.Random) -> list[str]:
    """The phrasing itself, or ``n`` distinct fillings of its ``{slot}`` markers."""
    if not _SLOT.search(text):
        return [text]
    out: list[str] = []
    for _ in range(n * 4):
        filled = _SLOT.sub(lambda m: rng.choice(SLOTS[m.group(1)]), text)
        if filled not in out:
            out.append(filled)
        if len(out) == n:
            break
    return out


class Noiser:
    """Deterministic ASR-style noise: fillers, punctuation loss, homophones, Traditional."""

    def __init__(self, chars: str) -> None:
        import opencc

        self._s2t = opencc.OpenCC("s2t")
        by_sound: dict[str, list[str]] = {}
        for char in sorted(set(chars + EXTRA_CHARS)):
            if "\u4e00" <= char <= "\u9fff":
                sound = lazy_pinyin(char, style=Style.TONE3)[0]
                by_sound.setdefault(sound, []).append(char)
        self._homophones = {
            c: [o for o in group if o != c] for group in by_sound.values() for c in group
        }

    def homophone(self, text: str, rng: random.Random) -> str:
        positions = [i for i, c in enumerate(text) if self._homophones.get(c)]
        if not positions:
            return text
        i = rng.choice(positions)
        return text[:i] + rng.choice(self._homophones[text[i]]) + text[i + 1 :]

    def noisy(self, text: str, rng: random.Random) -> str:
        out = text
        if rng.random() < 0.35:
            out = rng.choice(FILLER_PREFIXES) + out
        if rng.random() < 0.15:
            out = PUNCT.sub("", out) + rng.choice(FILLER_SUFFIXES)
        if rng.random() < 0.6:
            out = self.homophone(out, rng)
        if rng.random() < 0.5:
            out = PUNCT.sub(rng.choice(("", " ", "")), out)
        if rng.random() < 0.2:
            out = self._s2t.convert(out)
        return out.strip() or text


def _key(text: str) -> str:
    return PUNCT.sub("", text).replace(" ", "")


def build_split(
    block: str, split: str, rng: random.Random, noiser: Noiser, banned: set[str]
) -> list[Row]:
    """Expand one block into rows (order: section order, deterministic)."""
    rows: list[Row] = []
    seen: set[tuple[str, str]] = set()

    def add(topic: str, text: str, intent: str) -> None:
        if _key(text) in banned or (topic, _key(text)) in seen:
            return
        seen.add((topic, _key(text)))
        rows.append(Row(topic, text, intent))

    for line in parse_block(block):
        for text in expand(line.text, TEMPLATE_SAMPLES[split], rng):
            topics: Sequence[str] = line.topics
            if len(topics) > 2 and line.topics == QUESTION_TOPICS:
                k = GENERIC_TOPICS_PER_LINE[split]
                topics = rng.sample([*QUESTION_TOPICS, "default"], k)
            elif len(topics) > 1 and split == "heldout":
                topics = [rng.choice(topics)]
            for topic in topics:
                noisy = rng.random() < NOISE_RATE[split]
                if split == "train":
                    add(topic, text, line.intent)
                    if noisy:
                        add(topic, noiser.noisy(text, rng), line.intent)
                else:
                    add(topic, noiser.noisy(text, rng) if noisy else text, line.intent)
    return rows


def persona_answers(personas_dir: Path) -> set[str]:
    """Answer texts of the public persona sample (never used as corpus rows)."""
    import yaml

    banned: set[str] = set()
    for path in sorted(personas_dir.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for answer in (data.get("answers") or {}).values():
            if isinstance(answer, str):
                banned.add(_key(answer))
    return banned


def write_tsv(path: Path, rows: Sequence[Row]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE)
        writer.writerow(("topic", "text", "intent"))
        for row in rows:
            writer.writerow((row.topic, row.text, row.intent))


def build(out_dir: Path, personas_dir: Path | None) -> tuple[list[Row], list[Row]]:
    banned = persona_answers(personas_dir) if personas_dir and personas_dir.is_dir() else set()
    noiser = Noiser(TRAIN + HELDOUT)
    train = build_split(TRAIN, "train", random.Random(SEED), noiser, banned)
    train_keys = {_key(r.text) for r in train}
    heldout = build_split(HELDOUT, "heldout", random.Random(SEED + 1), noiser, banned | train_keys)
    write_tsv(out_dir / "train.tsv", train)
    write_tsv(out_dir / "heldout.tsv", heldout)
    return train, heldout


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument(
        "--personas",
        type=Path,
        default=HERE.parents[2].parent / "shared" / "personas",
        help="persona sample whose answers must not appear in the corpus",
    )
    args = parser.parse_args(argv)
    train, heldout = build(args.out, args.personas)
    print(f"train: {len(train)} rows, heldout: {len(heldout)} rows -> {args.out}")


if __name__ == "__main__":
    main()
